// ACPICA: Sleep-A 00, Sleep-B 00
// Atoll: refused: NotAPackage
// A field unit named _S5 is the first \_S5 (the Name after it fails to load): ACPICA reads the
// field from memory and takes 0. Atoll does not read hardware to power off, and refuses it.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "FIELDS5", 1)
{
    OperationRegion (GNVS, SystemMemory, 0x1000, 0x10)
    Field (GNVS, AnyAcc, NoLock, Preserve)
    {
        _S5, 8
    }
    Name (\_S5, Package () { 5, 5 })
}
