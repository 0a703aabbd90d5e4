// ACPICA: Sleep-A 05, Sleep-B 05
// `Package (0x100)` is too large for a Package's one-byte count: iasl encodes a VarPackage.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "VARPKG", 1)
{
    Name (_S5, Package (0x100) { 5, 5 })
}
