// ACPICA: Sleep-A 05, Sleep-B 05
// The first definition of \_S5 stands; loading the second fails (iasl compiles it only with -f).
DefinitionBlock ("", "DSDT", 2, "ATOLL", "TWICE", 1)
{
    Name (_S5, Package () { 5, 5 })
    Name (\_S5, Package () { 3, 3 })
}
