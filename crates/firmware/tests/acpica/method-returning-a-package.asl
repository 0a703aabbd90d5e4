// ACPICA: Sleep-A 07, Sleep-B 07
// \_S5 as a method that returns the package.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "METHOD", 1)
{
    Method (_S5, 0, NotSerialized)
    {
        Return (Package () { 7, 7, 0, 0 })
    }
}
