// ACPICA: Sleep-A 00, Sleep-B 05
// Atoll: refused: NotAnInteger
// ACPICA converts the string "five" to the integer 0; Atoll refuses a sleep type that is not an
// integer.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "STRING", 1)
{
    Name (_S5, Package () { "five", 5 })
}
