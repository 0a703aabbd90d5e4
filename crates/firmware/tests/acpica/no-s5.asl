// ACPICA: AE_NOT_FOUND
// No \_S5 anywhere.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "NOS5", 1)
{
    Name (_S4, Package () { 4, 4, 0, 0 })
}
