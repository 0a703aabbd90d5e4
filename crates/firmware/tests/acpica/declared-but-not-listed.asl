// ACPICA: Sleep-A 05, Sleep-B 00
// Package (2) that lists one element: the second is uninitialized, not an integer.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "SHORTPKG", 1)
{
    Name (_S5, Package (2) { 5 })
}
