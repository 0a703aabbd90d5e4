// ACPICA: Sleep-A 05, Sleep-B 05
// Atoll: refused: UncertainScope
// Scope (FOO) inside \_SB names the FOO ACPICA finds at the root, since \_SB has none, so ^_S5
// in it is \_S5. Where ^ lands depends on which objects exist, which Atoll does not track.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "SEARCH", 1)
{
    Device (FOO)
    {
        Name (_ADR, Zero)
    }
    Scope (\_SB)
    {
        Scope (FOO)
        {
            Name (^_S5, Package () { 5, 5 })
        }
    }
}
