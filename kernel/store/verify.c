/*
 * kernel/store/verify.c — placeholder; being written.
 */
#include "config.h"

#include <stdio.h>

#include "kernel/store/commands.h"

int
ts__cmd_verifydata(int argc, char **argv)
{
	(void)argc;
	fprintf(stderr, "tessera: %s: not implemented yet\n", argv[0]);
	return 1;
}
