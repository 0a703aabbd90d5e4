// ACPICA: Sleep-A 05, Sleep-B 05
// Atoll: refused: MethodNotConstant
// A method that does something before it returns needs an interpreter: Atoll says so.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "METHSTMT", 1)
{
    Method (_S5, 0, NotSerialized)
    {
        Store (One, Local0)
        Return (Package () { 5, 5 })
    }
}
