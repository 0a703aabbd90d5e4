// ACPICA: Sleep-A 05, Sleep-B 00
// An integer where the package belongs: ACPICA wraps it in a package of one.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "INTEGER", 1)
{
    Name (_S5, 0x05)
}
