// ACPICA: AE_AML_PACKAGE_LIMIT
// A package with no elements gives no sleep types.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "EMPTY", 1)
{
    Name (_S5, Package () { })
}
