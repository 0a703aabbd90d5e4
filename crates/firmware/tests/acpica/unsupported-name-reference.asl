// ACPICA: Sleep-A 05, Sleep-B 05
// Atoll: refused: NotAnInteger
// An element that names another object is not resolved: Atoll says so.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "NAMEREF", 1)
{
    Name (FIVE, 5)
    Name (_S5, Package () { FIVE, 5 })
}
