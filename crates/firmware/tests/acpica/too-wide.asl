// ACPICA: AE_AML_OPERAND_VALUE
// SLP_TYPa of 0x15 does not fit SLP_TYP's three bits: ACPICA refuses it when it writes it.
DefinitionBlock ("", "DSDT", 2, "ATOLL", "WIDE", 1)
{
    Name (_S5, Package () { 0x15, 5 })
}
