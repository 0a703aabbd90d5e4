// ACPICA: AE_NOT_FOUND
// An _S5 inside a Device is that device's, not \_S5 (iasl compiles it only with -f).
DefinitionBlock ("", "DSDT", 2, "ATOLL", "INDEV", 1)
{
    Device (DEV0)
    {
        Name (_HID, EisaId ("PNP0C0C"))
        Name (_S5, Package () { 5, 5, 0, 0 })
    }
}
