# Lightr build. GNU make + pkg-config; see README.md. Targets:
#   make deps   install missing Debian packages (as root; idempotent)
#   make        optimised ./lightr
#   make test   deps + ASan/UBSan build + unit + integration + check-deps + short fuzz runs
#   make run    deps + build + ./lightr serve on the built-in defaults
#   make fuzz   long fuzz runs by hand (FUZZ_SECONDS=600)
#   make update-golden  regenerate golden files (tests/testdata)
#   make format / make format-check, make clean

CC      ?= cc
PKGS    := openssl sqlite3 libsodium yaml-0.1 libmicrohttpd gmime-3.0 zlib libunbound jansson \
           libcurl libxml-2.0 libpsl
DEB_PKGS := gcc make pkg-config clang libclang-rt-14-dev clang-format openssl sqlite3 \
            libssl-dev libsqlite3-dev libsodium-dev libyaml-dev libmicrohttpd-dev \
            libgmime-3.0-dev zlib1g-dev isync libunbound-dev libevent-dev python3-dkim \
            python3-dnslib libjansson-dev curl libcurl4-openssl-dev libxml2-dev libpsl-dev \
            python3-spf python3-cryptography python3-nacl python3-dnspython \
            python3-aiosmtpd \
            python3 python3-pytest python3-argon2 procps swaks
FUZZ_SECONDS ?= 3

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
BASE    := -std=c17 -D_GNU_SOURCE -Isrc $(WARN) -pthread -g
CFLAGS_REL  := $(BASE) -O2 -fstack-protector-strong -D_FORTIFY_SOURCE=2
CFLAGS_SAN  := $(BASE) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined
LDFLAGS_SAN := -fsanitize=address,undefined

LIB_SRC   := $(sort $(filter-out %_test.c src/cli/main.c,$(wildcard src/*/*.c)))
TEST_SRC  := $(sort $(wildcard src/*/*_test.c))
FUZZ_SRC  := $(sort $(wildcard fuzz/fuzz_*.c))
HDRS      := $(wildcard src/*/*.h) tests/harness/test.h

REL_OBJ  := $(LIB_SRC:src/%.c=build/rel/%.o)
SAN_OBJ  := $(LIB_SRC:src/%.c=build/san/%.o)
FZ_OBJ   := $(LIB_SRC:src/%.c=build/fuzz/%.o)
UNIT_BIN := $(TEST_SRC:src/%.c=build/san/%)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)

.PHONY: all deps run test unit integration fuzz fuzz-build fuzz-short check-deps format \
        format-check clean san update-golden
all: lightr

deps:
	@tools/deps.sh $(DEB_PKGS)

lightr: build/rel/liblightr.a build/rel/cli/main.o
	$(CC) $(CFLAGS_REL) -o $@ build/rel/cli/main.o build/rel/liblightr.a $(PKG_LIBS)

# Rate-limit micro-benchmark (issue 8): prints a Markdown table; see bench/limit-bench.c.
.PHONY: bench-limit
bench-limit: build/rel/limit-bench
build/rel/limit-bench: bench/limit-bench.c build/rel/liblightr.a src/limit/limit.h
	$(CC) $(CFLAGS_REL) -o build/rel/limit-bench bench/limit-bench.c build/rel/liblightr.a $(PKG_LIBS)

build/rel/liblightr.a: $(REL_OBJ)
	@rm -f $@; ar rcs $@ $^
build/rel/%.o: src/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_REL) $(PKG_CFLAGS) -c -o $@ $<

# openapi.c embeds this file with the assembler's .incbin.
build/rel/http/openapi.o build/san/http/openapi.o build/fuzz/http/openapi.o: src/http/openapi.json

# The ASan+UBSan build used by every test.
san: build/san/lightr $(UNIT_BIN)
build/san/lightr: build/san/liblightr.a build/san/cli/main.o
	$(CC) $(LDFLAGS_SAN) -pthread -o $@ build/san/cli/main.o build/san/liblightr.a $(PKG_LIBS)
build/san/liblightr.a: $(SAN_OBJ)
	@rm -f $@; ar rcs $@ $^
build/san/%.o: src/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_SAN) $(PKG_CFLAGS) -c -o $@ $<
build/san/%_test: src/%_test.c build/san/liblightr.a $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_SAN) -Itests/harness $(PKG_CFLAGS) -o $@ $< build/san/liblightr.a $(PKG_LIBS)

# libFuzzer targets, built with clang.
FZFLAGS := -std=c17 -D_GNU_SOURCE -Isrc -g -O1 -pthread -fsanitize=fuzzer-no-link,address,undefined
fuzz-build: $(FUZZ_BIN)
build/fuzz/liblightr.a: $(FZ_OBJ)
	@rm -f $@; ar rcs $@ $^
build/fuzz/%.o: src/%.c $(HDRS)
	@mkdir -p $(@D)
	clang $(FZFLAGS) $(PKG_CFLAGS) -c -o $@ $<
build/fuzz/fuzz_%: fuzz/fuzz_%.c build/fuzz/liblightr.a
	@mkdir -p $(@D)
	clang $(FZFLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -o $@ $< build/fuzz/liblightr.a $(PKG_LIBS)

run: deps
	@$(MAKE) --no-print-directory lightr
	./lightr serve

# Everything, under ASan/UBSan; ends with "tests: N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory san fuzz-build lightr
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tools/run-tests.sh

fuzz: fuzz-build
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-600} tools/run-fuzz.sh $(FUZZ_BIN)

# Regenerates tests/testdata/mime/*.ref (review the diff; tools/update-golden.sh --verify compares
# with a private Dovecot).
update-golden:
	@tools/update-golden.sh

check-deps:
	@tools/check-deps.sh

format:
	clang-format -i src/*/*.c src/*/*.h fuzz/*.c tests/harness/*.h
format-check:
	@clang-format --dry-run --Werror src/*/*.c src/*/*.h fuzz/*.c tests/harness/*.h

clean:
	rm -rf build lightr
