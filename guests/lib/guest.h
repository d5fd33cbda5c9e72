/* Constants shared by nodevisor's own guests (assembly and C). */
#ifndef NODEVISOR_GUEST_H
#define NODEVISOR_GUEST_H

#define COM1            0x3f8
#define COM1_LSR        (COM1 + 5)
#define LSR_THRE        0x20
#define DEBUG_EXIT_PORT 0xf4
#define POST_PORT       0x80
#define ACPI_PM1A_CNT   0x604
#define ACPI_SLP_S5     ((5 << 10) | (1 << 13))
#define LAPIC_ID_ADDR   0xfee00020

#define MAX_CPUS        256

#endif
