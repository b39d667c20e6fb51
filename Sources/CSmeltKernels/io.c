// Constants of the C library that Swift's Glibc module does not export.
#define _GNU_SOURCE
#include <fcntl.h>
#include "smelt_kernels.h"

int smelt_o_direct_flag(void) { return O_DIRECT; }
