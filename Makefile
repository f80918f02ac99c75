# lua-registry -- build, test and install.
#
# Knobs (luarocks' names, so `luarocks make` and a plain `make` agree):
#   LUA            interpreter used by the tests        (lua5.4)
#   LUA_VERSION    5.4, 5.3, 5.2, 5.1                    (from LUA)
#   LUA_INCDIR     Lua headers                           (pkg-config)
#   CURL_INCDIR, CURL_LIBDIR, OPENSSL_INCDIR, OPENSSL_LIBDIR
#   CC, CFLAGS, LIBFLAG, LIB_EXTENSION
#   PREFIX, INST_LIBDIR, INST_LUADIR, INST_BINDIR        (make install)
#   BUSTED_ARGS    extra arguments for busted            (none)

LUA           ?= lua5.4
LUA_VERSION   ?= $(patsubst lua%,%,$(LUA))
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
ALL_CFLAGS     = -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden $(WARN) \
                 -I$(LUA_INCDIR) -I$(CURL_INCDIR) -I$(OPENSSL_INCDIR) \
                 -DOPENSSL_API_COMPAT=0x10100000L $(CFLAGS)
LIBFLAG       ?= -shared
LIB_EXTENSION ?= so
LIBS           = -L$(CURL_LIBDIR) -L$(OPENSSL_LIBDIR) -lcurl -lcrypto

PREFIX        ?= /usr/local
INST_LIBDIR   ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
INST_LUADIR   ?= $(PREFIX)/share/lua/$(LUA_VERSION)
INST_BINDIR   ?= $(PREFIX)/bin

BUILD         ?= build
SRCS           = src/digest.c src/reference.c src/range.c src/link.c src/location.c \
                 src/buf.c src/http.c src/client.c src/lregistry.c
HDRS           = $(wildcard src/*.h)
OBJS           = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRCS))
MODULE         = $(BUILD)/registry/core.$(LIB_EXTENSION)
LUA_MODULES    = $(wildcard lua/registry/*.lua)

BUSTED        ?= $(LUA) /usr/bin/busted
BUSTED_ARGS   ?=

.PHONY: all deps test clean install demo

all: $(MODULE)

$(BUILD)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(MODULE): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $(OBJS) $(LIBS) $(LDFLAGS)

# Install what is missing from Debian; does nothing when all is there.
RUNTIME_PKGS = lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev lua-cjson pkg-config gcc make
TEST_PKGS    = lua-busted docker-registry skopeo python3 curl openssl
deps:
	@./scripts/deps.sh $(RUNTIME_PKGS) $(TEST_PKGS)

test: deps
	@$(MAKE) --no-print-directory all
	$(BUSTED) $(BUSTED_ARGS)

install: all
	install -d $(DESTDIR)$(INST_LIBDIR)/registry $(DESTDIR)$(INST_LUADIR)/registry
	install -m 0755 $(MODULE) $(DESTDIR)$(INST_LIBDIR)/registry/
	install -m 0644 lua/registry.lua $(DESTDIR)$(INST_LUADIR)/ 2>/dev/null || true
	install -m 0644 $(LUA_MODULES) $(DESTDIR)$(INST_LUADIR)/registry/

clean:
	rm -rf $(BUILD)
