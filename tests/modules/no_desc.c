/*
 * tests/modules/no_desc.c — a shared object with no descriptor at all;
 * the loader must refuse it with "no tessera_module descriptor".
 */
#include <tessera/tessera.h>

int no_desc_function(void);

int
no_desc_function(void)
{
	return 42;
}
