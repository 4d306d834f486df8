/* The OpenAPI 3.1 document of the REST API (http_private.h: http_openapi_json), served by
 * GET /api/v1/openapi.json. The text is src/http/openapi.json itself, put into .rodata by the
 * assembler (.incbin) with a NUL after it, so the file is the one source and nothing is
 * generated. The path is relative to the repository root, where make runs the compiler; the
 * Makefile makes this object depend on the file. src/http/openapi_test.c keeps the document
 * and the route tables in sync. */
#include "http_private.h"

/* The section directives leave the assembler where the compiler had it (.previous); the
 * compiler still emits .note.GNU-stack for this file, so the stack stays non-executable. */
__asm__(".section .rodata\n"
        ".global http_openapi_json\n"
        ".type http_openapi_json, @object\n"
        ".balign 16\n"
        "http_openapi_json:\n"
        ".incbin \"src/http/openapi.json\"\n"
        ".byte 0\n"
        ".size http_openapi_json, . - http_openapi_json\n"
        ".previous\n");
