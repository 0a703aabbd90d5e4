// ACPICA: Sleep-A 05, Sleep-B 06
// A package of one integer: ACPICA takes SLP_TYPa from its low byte and SLP_TYPb from the next.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "ONEELEM", 1)
{
    Name (_S5, Package () { 0x0605 })
}
