// ACPICA: Sleep-A 06, Sleep-B 06
// A name written from the root defines \_S5 wherever it is written.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "ROOTDEV", 1)
{
    Device (DEV0)
    {
        Name (\_S5, Package () { 6, 6, 0, 0 })
    }
}
