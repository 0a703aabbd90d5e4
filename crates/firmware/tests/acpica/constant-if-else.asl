// ACPICA: Sleep-A 05, Sleep-B 06
// Module-level If and Else with constant predicates: only the branches taken define names.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "IFELSE", 1)
{
    If (LEqual (0x02, 0x03))
    {
        Name (_S5, Package () { 1, 1, 0, 0 })
    }
    Else
    {
        If (LNot (Zero))
        {
            Name (_S5, Package () { 5, 6, 0, 0 })
        }
    }
}
