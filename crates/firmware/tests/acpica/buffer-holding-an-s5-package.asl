// ACPICA: Sleep-A 05, Sleep-B 05
// A Buffer whose bytes encode `Name (_S5, Package () { 1, 1 })` comes before the real \_S5.
// A scan of the bytes finds the buffer's (1, 1); the namespace holds (5, 5).
DefinitionBlock ("", "DSDT", 2, "ATOLL", "BUFPKG", 1)
{
    Name (BUF0, Buffer () { 0x08, 0x5F, 0x53, 0x35, 0x5F, 0x12, 0x06, 0x04, 0x01, 0x01, 0x00, 0x00 })
    Name (_S5, Package () { 5, 5, 0, 0 })
}
