# mk/reliability.mk -- fuzzing and sanitizer runs (issue 5).  Included from
# the top Makefile (`include mk/reliability.mk`), whose variables it uses:
# LUA, BUILD, SRCS, CORE_SRCS, HDRS, ALL_CFLAGS, LIBS, LIBFLAG, LIB_EXTENSION, BUSTED,
# BUSTED_ARGS, BUSTED_EXCLUDE, CURL_INCDIR, OPENSSL_INCDIR.
#
# Targets:
#   fuzz           build the libFuzzer targets (fuzz/fuzz_*.c), run each
#                  from its seed corpus fuzz/corpus/<t> for FUZZ_SECONDS
#                  (60), or for FUZZ_RUNS executions (FUZZ_SECONDS then
#                  defaults to 0: no limit), FUZZ_JOBS targets at once
#                  (scripts/fuzz.sh), and write the table of executions,
#                  coverage and crashes per target to FUZZ_RESULTS
#                  (fuzz/RESULTS.md).  A target with FUZZ_RUNS_<t> set
#                  runs for that many executions instead, whatever
#                  FUZZ_SECONDS says (unless FUZZ_RUNS is given):
#                  FUZZ_TARGET_RUNS, the list "<t>=<runs> ...", which
#                  `make fuzz FUZZ_TARGET_RUNS=` empties
#   fuzz-table     only write that table, from the logs the last run of
#                  each target left (build-fuzz/fuzz_<t>.log)
#   fuzz-ci        the same as fuzz, 10 s each (FUZZ_RUNS_<t> left out),
#                  table in build-fuzz/RESULTS.md
#   fuzz-build     only build them (build-fuzz/fuzz_<t>)
#   test-asan      the module built with AddressSanitizer + UBSan into
#                  build-asan/, the busted suite run with the ASan runtime
#                  preloaded into $(LUA) (leak detection off: the
#                  interpreter is not instrumented)
#   test-valgrind  busted under valgrind (definite leaks and memory errors
#                  are fatal) on VALGRIND_SPECS (default: the reliability,
#                  lifetime, client and parser specs; `make test-valgrind
#                  VALGRIND_SPECS=spec` for the whole suite)
#
# Knobs: FUZZ_CC (clang), FUZZ_SECONDS, FUZZ_RUNS, FUZZ_RUNS_<t>, FUZZ_JOBS, FUZZ_TARGETS,
# FUZZ_ARGS (extra libFuzzer flags), FUZZ_RESULTS, ASAN_CC (gcc or clang),
# ASAN_BUILD (build-asan), VALGRIND, VALGRIND_SPECS, VALGRIND_ARGS.
#
# Debian packages: clang and libclang-rt-14-dev (fuzz; libFuzzer and the
# clang sanitizer runtimes), gcc's libasan8 + libubsan1 (test-asan with
# gcc; they come with gcc), valgrind (test-valgrind).

FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= $(if $(FUZZ_RUNS),0,60)
FUZZ_JOBS     ?= 1
FUZZ_BUILD    ?= build-fuzz
FUZZ_RUNS     ?=
FUZZ_TARGETS  ?= digest reference range link location challenge header classify token \
                 auths authflow sigdoc keys keyless
FUZZ_ARGS     ?=
# Executions for a target whatever FUZZ_SECONDS: issue 21 asks 10 million
# of the signature targets (fuzz_sigdoc ~20,000 exec/s, fuzz_keys ~15,000
# on 2 cores: about 8 and 11 minutes), issue 24 of fuzz_keyless (~11,000
# exec/s: about 15 minutes).
FUZZ_RUNS_sigdoc ?= 10000000
FUZZ_RUNS_keys   ?= 10000000
FUZZ_RUNS_keyless ?= 10000000
FUZZ_TARGET_RUNS ?= $(strip $(foreach t,$(FUZZ_TARGETS),$(if $(FUZZ_RUNS_$t),$t=$(FUZZ_RUNS_$t))))
FUZZ_RESULTS  ?= fuzz/RESULTS.md
# (-iquote src, not -Isrc: src/regex.h must not hide libc's <regex.h>)
FUZZ_CFLAGS    = -g -O1 -std=c99 -D_POSIX_C_SOURCE=200809L \
                 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                 -fno-omit-frame-pointer -iquote src -I$(CURL_INCDIR) -I$(OPENSSL_INCDIR) \
                 -DOPENSSL_API_COMPAT=0x10100000L

# sources and libraries of each target (core files only, no Lua headers):
# the parsers, and what the core reads from the network (header values,
# the error classifier, the token answer)
FUZZ_SRC_digest    = src/digest.c
FUZZ_LIB_digest    = -lcrypto
FUZZ_SRC_reference = src/reference.c src/digest.c
FUZZ_LIB_reference = -lcrypto
FUZZ_SRC_range     = src/range.c
FUZZ_SRC_link      = src/link.c
FUZZ_SRC_location  = src/location.c
FUZZ_LIB_location  = -lcurl
FUZZ_SRC_challenge = src/challenge.c
FUZZ_SRC_header    = src/header.c src/range.c
FUZZ_LIB_header    = -lcurl
FUZZ_SRC_classify  = src/err.c src/challenge.c src/range.c src/header.c
FUZZ_LIB_classify  = -ljansson -lcurl
FUZZ_SRC_token     = src/auth.c src/challenge.c
FUZZ_LIB_token     = -ljansson -lcrypto
FUZZ_SRC_auths     = src/auth.c src/challenge.c
FUZZ_LIB_auths     = -ljansson -lcrypto
FUZZ_SRC_authflow  = src/auth.c src/challenge.c
FUZZ_LIB_authflow  = -ljansson -lcrypto
FUZZ_SRC_sigdoc    = src/sigdoc.c src/sig.c src/digest.c src/err.c src/challenge.c src/range.c src/header.c
FUZZ_LIB_sigdoc    = -ljansson -lcrypto -lcurl
FUZZ_SRC_keys      = src/sig.c src/digest.c src/err.c src/challenge.c src/range.c src/header.c
FUZZ_LIB_keys      = -ljansson -lcrypto -lcurl
FUZZ_SRC_keyless   = src/keyless.c src/trustroot.c src/x509chain.c src/sct.c src/tlog.c src/regex.c \
                     src/sigdoc.c src/sig.c src/digest.c src/err.c src/challenge.c src/range.c src/header.c
FUZZ_LIB_keyless   = -ljansson -lcrypto -lcurl

FUZZ_BINS = $(addprefix $(FUZZ_BUILD)/fuzz_,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-table fuzz-ci fuzz-build test-asan test-valgrind

fuzz-build: $(FUZZ_BINS)

# (every core source is a prerequisite: a change to src/sig.c rebuilds
# fuzz_keys, not only a change to fuzz/fuzz_keys.c or a header)
$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(CORE_SRCS) $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRC_$*) \
	    -L$(CURL_LIBDIR) -L$(OPENSSL_LIBDIR) $(FUZZ_LIB_$*)

# New inputs go to $(FUZZ_BUILD)/corpus/<t> (first directory); the
# committed seeds in fuzz/corpus/<t> are only read.  A crash leaves
# $(FUZZ_BUILD)/crash-<t>-<hash>; rerun it with `$(FUZZ_BUILD)/fuzz_<t> FILE`.
fuzz: $(FUZZ_BINS)
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) \
	    FUZZ_TARGET_RUNS="$(FUZZ_TARGET_RUNS)" \
	    FUZZ_ARGS="$(FUZZ_ARGS)" FUZZ_JOBS=$(FUZZ_JOBS) FUZZ_RESULTS=$(FUZZ_RESULTS) ./scripts/fuzz.sh $(FUZZ_TARGETS)

fuzz-table:
	@FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) \
	    FUZZ_TARGET_RUNS="$(FUZZ_TARGET_RUNS)" \
	    FUZZ_RESULTS=$(FUZZ_RESULTS) ./scripts/fuzz.sh --table $(FUZZ_TARGETS)

fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10 FUZZ_TARGET_RUNS= FUZZ_RESULTS=$(FUZZ_BUILD)/RESULTS.md

# ---------------------------------------------------------------- ASan
ASAN_CC       ?= gcc
ASAN_BUILD    ?= build-asan
ASAN_FLAGS     = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                 -fno-omit-frame-pointer
ASAN_OBJS      = $(patsubst src/%.c,$(ASAN_BUILD)/obj/%.o,$(SRCS))
ASAN_MODULE    = $(ASAN_BUILD)/registry/core.$(LIB_EXTENSION)
ASAN_ARCHIVE   = $(ASAN_BUILD)/registry/archive.$(LIB_EXTENSION)
ASAN_CORE_OBJS = $(filter-out $(patsubst src/%.c,$(ASAN_BUILD)/obj/%.o,$(ARCHIVE_SRCS)),$(ASAN_OBJS))
ASAN_ARCH_OBJS = $(filter-out $(ASAN_BUILD)/obj/binding/lregistry.o,$(ASAN_OBJS))
# gcc: libasan.so; clang: its shared runtime (-shared-libsan)
ASAN_IS_CLANG  = $(findstring clang,$(ASAN_CC))
ASAN_LINK      = $(if $(ASAN_IS_CLANG),-shared-libsan)
ASAN_RT_CLANG  = $(shell $(ASAN_CC) -print-runtime-dir)/libclang_rt.asan-x86_64.so
ASAN_RT_GCC    = $(shell $(ASAN_CC) -print-file-name=libasan.so)
ASAN_RT       ?= $(if $(ASAN_IS_CLANG),$(ASAN_RT_CLANG),$(ASAN_RT_GCC))
# The runtime is preloaded into $(LUA); unset_preload.so (from
# spec/support/asan_unset_preload.c) wraps execve() so that only shells and
# Lua interpreters inherit LD_PRELOAD: curl, python3, docker-registry run
# without it (curl hangs with the ASan runtime preloaded).
ASAN_UNSET     = $(ASAN_BUILD)/unset_preload.so
ASAN_ENV       = LD_PRELOAD="$(ASAN_RT) $(CURDIR)/$(ASAN_UNSET)" \
                 ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=0 \
                 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

$(ASAN_BUILD)/obj/binding/%.o: src/binding/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(ALL_CFLAGS) -O1 -g $(ASAN_FLAGS) -c $< -o $@

$(ASAN_BUILD)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(CORE_CFLAGS) -O1 -g $(ASAN_FLAGS) -c $< -o $@

$(ASAN_MODULE): $(ASAN_CORE_OBJS)
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(LIBFLAG) $(ASAN_FLAGS) $(ASAN_LINK) -o $@ $(ASAN_CORE_OBJS) $(LIBS) $(LDFLAGS)

$(ASAN_ARCHIVE): $(ASAN_ARCH_OBJS)
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(LIBFLAG) $(ASAN_FLAGS) $(ASAN_LINK) -o $@ $(ASAN_ARCH_OBJS) $(ARCHIVE_LIBS) $(LDFLAGS)

$(ASAN_UNSET): spec/support/asan_unset_preload.c
	@mkdir -p $(dir $@)
	$(ASAN_CC) -shared -fPIC -O1 -o $@ $< -ldl

# The nginx specs load build-luajit/ into nginx and the luarocks spec builds
# its own module: neither runs the sanitized one, so they are left out.
# Nothing here builds build/: a spec that starts bin/lua-registry must give
# it the module busted loaded (LUA_REGISTRY_BUILD, from
# spec/support/registry.lua's cli_lua()), or from a fresh clone the CLI
# cannot load registry.core (issue 20: cli_interrupt_spec's 2 errors).
ASAN_EXCLUDE  ?= --exclude-pattern=nginx_spec --exclude-pattern=luarocks_spec
test-asan: $(ASAN_MODULE) $(ASAN_ARCHIVE) $(ASAN_UNSET)
	@test -f "$(ASAN_RT)" || { echo "test-asan: no ASan runtime at '$(ASAN_RT)'"; exit 1; }
	PATH="$(CURDIR)/spec/support/bin:$$PATH" $(ASAN_ENV) ./scripts/run-busted.sh \
	    $(BUSTED) --cpath=./$(ASAN_BUILD)/?.$(LIB_EXTENSION) $(BUSTED_EXCLUDE) $(ASAN_EXCLUDE) $(BUSTED_ARGS)

# ------------------------------------------------------------- valgrind
VALGRIND       ?= valgrind
VALGRIND_SPECS ?= spec/reliability_spec.lua spec/lifetime_spec.lua \
                  $(if $(filter 5.4,$(LUA_VERSION)),spec/lifetime_54_spec.lua) \
                  spec/client_spec.lua spec/parsers_spec.lua
VALGRIND_ARGS  ?=
VALGRIND_CMD    = $(VALGRIND) -q --keep-debuginfo=yes --leak-check=full --errors-for-leak-kinds=definite \
                  --show-leak-kinds=definite --error-exitcode=99 \
                  --suppressions=spec/support/valgrind.supp $(VALGRIND_ARGS)

# The module of `make all` ($(BUILD)); the fault run is cut to 12
# transfers (valgrind makes hashing ~50x slower).
test-valgrind: all
	PATH="$(CURDIR)/spec/support/bin:$$PATH" FAULT_TRANSFERS=$${FAULT_TRANSFERS:-12} \
	    FAULT_COUNTS=$${FAULT_COUNTS:-/tmp/fault-counts-valgrind.txt} \
	    $(VALGRIND_CMD) $(BUSTED) $(BUSTED_CPATH) $(BUSTED_EXCLUDE) $(BUSTED_ARGS) $(VALGRIND_SPECS)

# ----------------------------------------------------------------- soak
# SOAK_TRANSFERS seeded transfers (1000, seed SOAK_SEED) through the fault
# proxy: spec/support/soak.lua, driven by scripts/soak.lua.  Prints the
# table (completed / failed with a clear error / accepted with wrong bytes
# / hung) and fails unless wrong bytes, hangs and unclear errors are 0;
# one line per transfer in $(BUILD)/soak.log.  Under SOAK_LIMIT seconds
# (900) or it fails as hung.  spec/soak_spec.lua runs 100 in `make test`.
SOAK_TRANSFERS ?= 1000
SOAK_SEED      ?= 20261201
SOAK_LIMIT     ?= 900

.PHONY: soak
soak: all
	@SOAK_LOG=$(BUILD)/soak.log LUA_CPATH="./$(BUILD)/?.$(LIB_EXTENSION);;" \
	    timeout $(SOAK_LIMIT) $(LUA) scripts/soak.lua $(SOAK_TRANSFERS) $(SOAK_SEED); st=$$?; \
	if [ $$st = 124 ]; then echo "soak: hung: not done after $(SOAK_LIMIT) s (last transfers in $(BUILD)/soak.log)"; fi; \
	exit $$st
