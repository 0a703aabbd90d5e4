// ACPICA: Sleep-A 05, Sleep-B 05
// A Buffer that holds `08 "_S5_" 00` comes before the real \_S5: a byte scan stops at it.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "BUFNAME", 1)
{
    Name (BUF0, Buffer () { 0x08, 0x5F, 0x53, 0x35, 0x5F, 0x00 })
    Name (_S5, Package () { 5, 5, 0, 0 })
}
