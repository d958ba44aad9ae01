/*
 * kernel/main.c — the entry point of the `tessera` binary.
 *
 * Kept to one call so that unit tests can link everything else.
 */
#include "config.h"

#include "kernel/commands.h"

int
main(int argc, char **argv)
{
	return ts__main(argc, argv);
}
