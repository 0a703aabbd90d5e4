// ACPICA: Sleep-A 05, Sleep-B 05
// What PC firmware puts before \_S5: operation regions and fields, methods with arguments and
// locals, devices with resource templates, a processor, a power resource, a thermal zone,
// mutexes, events, aliases, externals and module-level stores.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "PCFW", 1)
{
    External (\_SB.PCI0.XHC, DeviceObj)
    OperationRegion (PMIO, SystemIO, 0x0600, 0x80)
    Field (PMIO, ByteAcc, NoLock, Preserve)
    {
        PM1S, 16,
        PM1E, 16,
        Offset (0x10),
        GPE0, 32
    }
    OperationRegion (GNVS, SystemMemory, 0x7FFF0000, 0x0100)
    Field (GNVS, AnyAcc, Lock, Preserve)
    {
        OSYS, 16,
        SMIF, 8
    }
    Mutex (MUT0, 0)
    Event (EVT0)
    Name (PICM, Zero)
    Name (STR0, "a string with _S5_ in it")
    Name (PKG0, Package () { "_S5_", 0x12, Package () { 1, 2 } })
    Store (0x07DF, OSYS)
    Method (_PIC, 1, NotSerialized)
    {
        Store (Arg0, PICM)
        If (LEqual (Arg0, One))
        {
            Name (_S5, Package () { 1, 1, 0, 0 })
        }
    }
    Method (ADD2, 2, Serialized)
    {
        Local0 = (Arg0 + Arg1)
        Return (Local0)
    }
    Scope (_SB)
    {
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Name (_CID, EisaId ("PNP0A03"))
            Name (_UID, Zero)
            Name (_CRS, ResourceTemplate ()
            {
                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
                    0x0000, 0x0000, 0x00FF, 0x0000, 0x0100,,,)
                IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08,)
            })
            Method (_STA, 0, NotSerialized)
            {
                Return (0x0F)
            }
            Device (LPCB)
            {
                Name (_ADR, 0x001F0000)
                OperationRegion (LPC0, PCI_Config, 0x40, 0xC0)
                Field (LPC0, AnyAcc, NoLock, Preserve)
                {
                    PMBA, 16
                }
            }
        }
        PowerResource (PWR0, 0, 0)
        {
            Method (_STA, 0, NotSerialized) { Return (One) }
            Method (_ON, 0, NotSerialized) { }
            Method (_OFF, 0, NotSerialized) { }
        }
    }
    Scope (_PR)
    {
        Processor (CPU0, 0x00, 0x00000610, 0x06)
        {
            Method (_STA, 0, NotSerialized) { Return (0x0F) }
        }
    }
    ThermalZone (TZ00)
    {
        Method (_TMP, 0, Serialized) { Return (0x0BB8) }
    }
    Alias (PICM, PIC2)
    CreateDWordField (Buffer (8) {}, 0, DW00)
    Name (_S3, Package () { 3, 3, 0, 0 })
    Name (_S5, Package () { 0x05, 0x05, Zero, Zero })
}
