// ACPICA: Sleep-A 05, Sleep-B 05
// Atoll: refused: Conditional
// Whether this If defines \_S5 depends on a value in memory at load time: Atoll says so.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "RUNIF", 1)
{
    Name (FLAG, One)
    If (FLAG)
    {
        Name (_S5, Package () { 5, 5 })
    }
}
