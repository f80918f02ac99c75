# lua-registry -- build, test and install.
#
# Knobs (luarocks' names, so `luarocks make` and a plain `make` agree):
#   LUA            interpreter: lua5.4 (default), lua5.3, lua5.2, lua5.1, luajit
#   LUA_VERSION    5.4, 5.3, 5.2, 5.1                    (from LUA; luajit: 5.1)
#   LUA_INCDIR     Lua headers                           (pkg-config; luajit:
#                  `pkg-config luajit`, else the Lua 5.1 headers)
#   BUILD          build directory                       (build for lua5.4,
#                  build-5.X for lua5.X, build-luajit for luajit)
#   CURL_INCDIR, CURL_LIBDIR, OPENSSL_INCDIR, OPENSSL_LIBDIR
#   CC, CFLAGS, LIBFLAG, LIB_EXTENSION
#   PREFIX, INST_LIBDIR, INST_LUADIR, INST_BINDIR        (make install)
#   MANDIR         manual pages: doc/lua-registry.1 in man1 ($(PREFIX)/share/man)
#   BUSTED_ARGS    extra arguments for busted            (none)
#   MATRIX         interpreters for test-matrix          (lua5.1 ... luajit)
#
# Targets:
#   all            build $(BUILD)/registry/core.so and archive.so for $(LUA)
#   test           make deps, then the busted suite on lua5.4 and on every
#                  other interpreter of MATRIX (the whole matrix), then lint
#   test-matrix    the busted suite on each interpreter of MATRIX
#   test-one       the busted suite on $(LUA) only
#   lint           luacheck (lua/, spec/, bin/) and luarocks lint
#   deps           install the Debian packages build and tests need
#   install, clean, clean-all
#
# LuaJIT: the module only uses the Lua 5.1 API, so one build loads in both
# upstream LuaJIT and OpenResty's fork (what Debian's nginx Lua module runs).
# `make deps` installs OpenResty's (luajit2, libluajit2-5.1-dev) because
# libnginx-mod-http-lua needs libluajit2-5.1-2, which conflicts with Debian's
# luajit/libluajit-5.1-*.  With neither installed, the Lua 5.1 headers serve.

LUA           ?= lua5.4
ifeq ($(LUA),luajit)
LUA_VERSION   ?= 5.1
LUA_INCDIR    ?= $(or $(patsubst -I%,%,$(filter -I%,$(shell $(PKG_CONFIG) --cflags-only-I luajit 2>/dev/null))),\
                      $(shell $(PKG_CONFIG) --variable=includedir lua5.1 2>/dev/null)/lua5.1)
BUILD         ?= build-luajit
else
LUA_VERSION   ?= $(patsubst lua%,%,$(LUA))
endif
ifeq ($(LUA_VERSION),5.4)
BUILD         ?= build
else
BUILD         ?= build-$(LUA_VERSION)
endif
PKG_CONFIG    ?= pkg-config
LUA_PC        ?= lua$(LUA_VERSION)
LUA_INCDIR    ?= $(shell $(PKG_CONFIG) --variable=includedir $(LUA_PC) 2>/dev/null)/lua$(LUA_VERSION)
CURL_INCDIR   ?= $(shell $(PKG_CONFIG) --variable=includedir libcurl 2>/dev/null)
CURL_LIBDIR   ?= $(shell $(PKG_CONFIG) --variable=libdir libcurl 2>/dev/null)
OPENSSL_INCDIR?= $(shell $(PKG_CONFIG) --variable=includedir libcrypto 2>/dev/null)
OPENSSL_LIBDIR?= $(shell $(PKG_CONFIG) --variable=libdir libcrypto 2>/dev/null)

CC            ?= cc
OPT           ?= -O2 -g
WARN          ?= -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS        ?= $(OPT)
# The core (src/*.c) is built without the Lua include path, so a stray
# #include <lua.h> there breaks the build; the binding (src/binding/*.c)
# gets it.
CORE_CFLAGS    = -std=c99 -D_POSIX_C_SOURCE=200809L -pthread -fPIC -fvisibility=hidden $(WARN) \
                 -I$(CURL_INCDIR) -I$(OPENSSL_INCDIR) \
                 -DOPENSSL_API_COMPAT=0x10100000L $(CFLAGS)
ALL_CFLAGS     = $(CORE_CFLAGS) -I$(LUA_INCDIR)
LIBFLAG       ?= -shared
LIB_EXTENSION ?= so
LIBS           = -L$(CURL_LIBDIR) -L$(OPENSSL_LIBDIR) -lcurl -lcrypto -ljansson -pthread
# registry/archive.so links these too (see ARCHIVE_SRCS)
ARCHIVE_LIBS   = $(LIBS) -larchive -lz -lzstd

PREFIX        ?= /usr/local
INST_LIBDIR   ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
INST_LUADIR   ?= $(PREFIX)/share/lua/$(LUA_VERSION)
INST_BINDIR   ?= $(PREFIX)/bin
MANDIR        ?= $(PREFIX)/share/man

CORE_SRCS      = $(sort $(wildcard src/*.c))
BIND_SRCS      = $(sort $(wildcard src/binding/*.c))
SRCS           = $(CORE_SRCS) $(BIND_SRCS)
HDRS           = $(wildcard src/*.h src/binding/*.h)
OBJS           = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRCS))
# The code that needs libarchive, zlib or libzstd is built into its own module,
# registry/archive.so (core.archive, loaded on first use), so that a
# process that never touches an archive does not map libarchive and what
# it brings (libxml2, ICU, libstdc++: 2.5 MiB resident, issue 23).  That
# module carries its own copy of the rest of the core it calls into
# (everything but lregistry.c, the core's luaopen), all symbols hidden.
ARCHIVE_SRCS   = src/archive.c src/flatten.c src/gzip.c src/layer.c src/zstd.c src/binding/larchive.c src/binding/llayer.c
ARCHIVE_OBJS   = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(ARCHIVE_SRCS))
CORE_OBJS      = $(filter-out $(ARCHIVE_OBJS),$(OBJS))
ARCHIVE_MOD_OBJS = $(filter-out $(BUILD)/obj/binding/lregistry.o,$(OBJS))
MODULE         = $(BUILD)/registry/core.$(LIB_EXTENSION)
ARCHIVE_MODULE = $(BUILD)/registry/archive.$(LIB_EXTENSION)
LUA_MODULES    = $(wildcard lua/registry/*.lua)
# the command line's helpers (registry.cli.*)
CLI_MODULES    = $(wildcard lua/registry/cli/*.lua)
# the test kit (registry.testing): its modules and the servers it runs
KIT_FILES      = $(wildcard lua/registry/testing/*.lua lua/registry/testing/*.py)

BUSTED        ?= $(LUA) /usr/bin/busted
BUSTED_ARGS   ?=
# Every busted run names its own cpath (.busted's ./build is the 5.4 one).
# Specs that need Lua 5.4 syntax (`<close>`) live in *_54_spec.lua files.
BUSTED_CPATH   = --cpath=./$(BUILD)/?.$(LIB_EXTENSION)
BUSTED_EXCLUDE = $(if $(filter 5.4,$(LUA_VERSION)),,--exclude-pattern=_54_spec)
MATRIX        ?= lua5.1 lua5.2 lua5.3 lua5.4 luajit

.PHONY: all deps test test-one test-matrix lint clean clean-all install demo

all: $(MODULE) $(ARCHIVE_MODULE)

$(BUILD)/obj/binding/%.o: src/binding/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -c $< -o $@

$(MODULE): $(CORE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $(CORE_OBJS) $(LIBS) $(LDFLAGS)

$(ARCHIVE_MODULE): $(ARCHIVE_MOD_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $(ARCHIVE_MOD_OBJS) $(ARCHIVE_LIBS) $(LDFLAGS)

# Install what is missing from Debian; does nothing when all is there.
# LuaJIT is OpenResty's (luajit2): see the note at the top.
RUNTIME_PKGS = lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev libjansson-dev libarchive-dev zlib1g-dev libzstd-dev lua-cjson pkg-config gcc make
TEST_PKGS    = lua-busted docker-registry skopeo umoci zstd python3 curl openssl groff-base
MATRIX_PKGS  = lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev \
               luajit2 libluajit2-5.1-dev
TOOL_PKGS    = nginx-light libnginx-mod-http-lua luarocks lua-check \
               python3-jwt python3-cryptography apache2-utils \
               clang libclang-rt-14-dev valgrind
deps:
	@./scripts/deps.sh $(RUNTIME_PKGS) $(TEST_PKGS) $(MATRIX_PKGS) $(TOOL_PKGS)

# The main target, a few minutes on 2 cores: the whole suite on $(LUA)
# (5.4), the suite on the rest of the matrix without the fault-injection
# runs (the 100-transfer soak, whole images through the fault proxy, the
# registries' dialects, the stalls and deadlines of the C transfer loop),
# auth, skopeo interop, nginx (every *nginx_spec: nginx loads the LuaJIT
# build whatever runs busted) and the test kit's process handling
# (version-independent C paths and servers, run once on 5.4), luacheck and
# luarocks lint, the whole suite again with the module built with
# AddressSanitizer + UBSan, and each fuzz target briefly.  Every part runs
# even after a failure; the last line totals the specs.  Longer runs have
# their own targets: test-matrix (everything on every version), fuzz,
# soak, test-valgrind, bench.
QUICK_EXCLUDE = --exclude-pattern=reliability_spec --exclude-pattern=auth_spec \
                --exclude-pattern=interop_spec --exclude-pattern=nginx_spec \
                --exclude-pattern=soak_spec --exclude-pattern=image_faults_spec \
                --exclude-pattern=dialects_spec --exclude-pattern=testing_spec \
                --exclude-pattern=stall_spec
test: deps
	@st=0; counts=$(CURDIR)/$(BUILD)/test-counts; mkdir -p $(BUILD); : > $$counts; \
	COUNTS=$$counts $(MAKE) --no-print-directory test-one || st=1; \
	COUNTS=$$counts MATRIX_ARGS="$(QUICK_EXCLUDE)" \
	    ./scripts/test-matrix.sh $(filter-out $(LUA),$(MATRIX)) || st=1; \
	$(MAKE) --no-print-directory lint || st=1; \
	COUNTS=$$counts $(MAKE) --no-print-directory test-asan || st=1; \
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=5 FUZZ_TARGET_RUNS= FUZZ_RESULTS=build-fuzz/RESULTS.md || st=1; \
	awk '{ok += $$1; bad += $$2 + $$3} END { printf "make test: %d passed, %d failed\n", ok, bad }' $$counts; \
	exit $$st

test-matrix: deps
	@./scripts/test-matrix.sh $(MATRIX)

# The suite on $(LUA) alone (no deps check).  spec/support/bin holds the
# test credential helper (docker-credential-luaregtest) the specs run.
test-one: all
	PATH="$(CURDIR)/spec/support/bin:$$PATH" ./scripts/run-busted.sh \
	    $(BUSTED) $(BUSTED_CPATH) $(BUSTED_EXCLUDE) $(MATRIX_ARGS) $(BUSTED_ARGS)

lint:
	luacheck lua spec bin/*
	luarocks lint rockspec/lua-registry-scm-1.rockspec

install: all
	install -d $(DESTDIR)$(INST_LIBDIR)/registry $(DESTDIR)$(INST_LUADIR)/registry
	install -m 0755 $(MODULE) $(ARCHIVE_MODULE) $(DESTDIR)$(INST_LIBDIR)/registry/
	install -m 0644 lua/registry.lua $(DESTDIR)$(INST_LUADIR)/ 2>/dev/null || true
	install -m 0644 $(LUA_MODULES) $(DESTDIR)$(INST_LUADIR)/registry/
	install -d $(DESTDIR)$(INST_LUADIR)/registry/cli
	install -m 0644 $(CLI_MODULES) $(DESTDIR)$(INST_LUADIR)/registry/cli/
	install -d $(DESTDIR)$(INST_LUADIR)/registry/testing
	install -m 0644 $(KIT_FILES) $(DESTDIR)$(INST_LUADIR)/registry/testing/
	install -d $(DESTDIR)$(INST_BINDIR)
	for f in bin/*; do [ -f "$$f" ] || continue; \
	  sed '1s|^#!.*|#!/usr/bin/env $(LUA)|' "$$f" > $(DESTDIR)$(INST_BINDIR)/$${f#bin/} && \
	  chmod 0755 $(DESTDIR)$(INST_BINDIR)/$${f#bin/} || exit 1; done
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m 0644 doc/lua-registry.1 $(DESTDIR)$(MANDIR)/man1/

# The main job on a throwaway local registry (see README).
DEMO_PKGS = docker-registry curl python3
demo:
	@./scripts/deps.sh $(RUNTIME_PKGS) $(DEMO_PKGS)
	@$(MAKE) --no-print-directory all
	$(LUA) scripts/demo.lua

include mk/reliability.mk
include mk/bench.mk

clean:
	rm -rf $(BUILD)

clean-all:
	rm -rf build build-5.1 build-5.2 build-5.3 build-luajit
