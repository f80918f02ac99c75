rockspec_format = "3.0"
package = "lua-registry"
version = "scm-1"

source = {
  url = "git+https://example.invalid/lua-registry.git",
}

description = {
  summary = "Client for OCI / Docker container registries (distribution API v2)",
  detailed = [[
    lua-registry talks to container registries over the OCI distribution
    API: pulls and pushes blobs and manifests with streaming, verified
    digests, chunked and resumable uploads, tag and catalog listing, and
    basic or bearer-token authentication. The core is written in C on
    libcurl and libcrypto; a thin Lua layer adds the friendly API.
  ]],
  homepage = "https://example.invalid/lua-registry",
  license = "MIT",
  labels = { "docker", "oci", "registry", "http", "curl" },
}

dependencies = {
  "lua >= 5.1, < 5.5",
  "lua-cjson",
}

external_dependencies = {
  -- no header: Debian and Ubuntu keep curl/curl.h in a multiarch include
  -- directory the compiler searches but luarocks does not
  CURL = { library = "curl" },
  OPENSSL = { header = "openssl/evp.h", library = "crypto" },
  JANSSON = { header = "jansson.h", library = "jansson" },
  ARCHIVE = { header = "archive.h", library = "archive" },
  ZLIB = { header = "zlib.h", library = "z" },
  ZSTD = { header = "zstd.h", library = "zstd" },
}

-- The C sources: ARCHIVE (what links libarchive, zlib or libzstd, the Makefile's
-- ARCHIVE_SRCS) and the rest of the core.
local ARCHIVE = {
  "src/archive.c", "src/flatten.c", "src/gzip.c", "src/layer.c", "src/zstd.c",
  "src/binding/larchive.c", "src/binding/llayer.c",
}
local CORE = {
  "src/auth.c", "src/batch.c", "src/body.c", "src/buf.c",
  "src/challenge.c", "src/client.c", "src/digest.c", "src/err.c", "src/fsops.c",
  "src/hashq.c", "src/header.c", "src/http.c", "src/keyless.c", "src/link.c",
  "src/location.c", "src/ops.c", "src/range.c", "src/reader.c", "src/reference.c",
  "src/referrers.c", "src/regex.c", "src/request.c", "src/sct.c", "src/sig.c",
  "src/sigdoc.c", "src/spool.c", "src/tlog.c", "src/trustroot.c", "src/upload.c",
  "src/x509chain.c", "src/binding/laux.c", "src/binding/lbatch.c",
  "src/binding/lclient.c", "src/binding/lerror.c", "src/binding/lkey.c",
  "src/binding/lreader.c", "src/binding/lregex.c",
  "src/binding/ltrust.c", "src/binding/lupload.c", "src/binding/lutil.c",
}
local CORE_SOURCES, ARCHIVE_MODULE_SOURCES = { "src/binding/lregistry.c" }, {}
-- (a rockspec runs with no globals: no ipairs)
for i = 1, #CORE do
  CORE_SOURCES[#CORE_SOURCES + 1] = CORE[i]
  ARCHIVE_MODULE_SOURCES[#ARCHIVE_MODULE_SOURCES + 1] = CORE[i]
end
for i = 1, #ARCHIVE do ARCHIVE_MODULE_SOURCES[#ARCHIVE_MODULE_SOURCES + 1] = ARCHIVE[i] end

build = {
  type = "builtin",
  modules = {
    ["registry.core"] = {
      -- every src/*.c and src/binding/*.c but ARCHIVE's (spec/luarocks_spec.lua
      -- checks the two lists against the Makefile's)
      sources = CORE_SOURCES,
      libraries = { "curl", "crypto", "jansson", "pthread" },   -- pthread: src/hashq.c
      incdirs = { "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)", "$(JANSSON_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)", "$(JANSSON_LIBDIR)" },
      defines = { "OPENSSL_API_COMPAT=0x10100000L", "_POSIX_C_SOURCE=200809L" },
    },
    -- core.archive and core.layer, loaded on first use: the only module
    -- that links libarchive, zlib and libzstd (a pull does not map them); it carries its own
    -- copy of the core but lregistry.c
    ["registry.archive"] = {
      sources = ARCHIVE_MODULE_SOURCES,
      libraries = { "curl", "crypto", "jansson", "archive", "z", "zstd", "pthread" },
      incdirs = { "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)", "$(JANSSON_INCDIR)", "$(ARCHIVE_INCDIR)",
                  "$(ZLIB_INCDIR)", "$(ZSTD_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)", "$(JANSSON_LIBDIR)", "$(ARCHIVE_LIBDIR)",
                  "$(ZLIB_LIBDIR)", "$(ZSTD_LIBDIR)" },
      defines = { "OPENSSL_API_COMPAT=0x10100000L", "_POSIX_C_SOURCE=200809L" },
    },
    ["registry"]             = "lua/registry/init.lua",
    ["registry.cli"]         = "lua/registry/cli/init.lua",
    ["registry.cli.context"] = "lua/registry/cli/context.lua",
    ["registry.cli.inspect"] = "lua/registry/cli/inspect.lua",
    ["registry.cli.image"]   = "lua/registry/cli/image.lua",
    ["registry.cli.artifact"] = "lua/registry/cli/artifact.lua",
    ["registry.cli.auth"]    = "lua/registry/cli/auth.lua",
    ["registry.cli.build"]   = "lua/registry/cli/build.lua",
    ["registry.cli.output"]  = "lua/registry/cli/output.lua",
    ["registry.cli.sync"]    = "lua/registry/cli/sync.lua",
    ["registry.cli.transports"] = "lua/registry/cli/transports.lua",
    ["registry.artifact"]    = "lua/registry/artifact.lua",
    ["registry.credentials"] = "lua/registry/credentials.lua",
    ["registry.dockerarchive"] = "lua/registry/dockerarchive.lua",
    ["registry.errors"]      = "lua/registry/errors.lua",
    ["registry.fs"]          = "lua/registry/fs.lua",
    ["registry.graph"]       = "lua/registry/graph.lua",
    ["registry.image"]       = "lua/registry/image.lua",
    ["registry.layout"]      = "lua/registry/layout.lua",
    ["registry.mutate"]      = "lua/registry/mutate.lua",
    ["registry.ngx"]         = "lua/registry/ngx.lua",
    ["registry.ociarchive"]  = "lua/registry/ociarchive.lua",
    ["registry.reference"]   = "lua/registry/reference.lua",
    ["registry.semver"]      = "lua/registry/semver.lua",
    ["registry.sync"]        = "lua/registry/sync.lua",
    ["registry.sync_config"] = "lua/registry/sync_config.lua",
    ["registry.policy"]      = "lua/registry/policy.lua",
    ["registry.trust"]       = "lua/registry/trust.lua",
    ["registry.cli.trust"]   = "lua/registry/cli/trust.lua",
    ["registry.transport"]   = "lua/registry/transport.lua",
    ["registry.json"]        = "lua/registry/json.lua",
    ["registry.index"]       = "lua/registry/index.lua",
    ["registry.rebase"]      = "lua/registry/rebase.lua",
    -- the test kit (doc/testing.md: Testing your tooling)
    ["registry.testing"]             = "lua/registry/testing.lua",
    ["registry.testing.auth"]        = "lua/registry/testing/auth.lua",
    ["registry.testing.fault_proxy"] = "lua/registry/testing/fault_proxy.lua",
    ["registry.testing.images"]      = "lua/registry/testing/images.lua",
    ["registry.testing.proc"]        = "lua/registry/testing/proc.lua",
    ["registry.testing.server"]      = "lua/registry/testing/server.lua",
  },
  -- the manual (doc/*.md and the manual page doc/lua-registry.1) into the
  -- rock's own directory: luarocks has no place for manual pages
  -- (`man "$(luarocks show --rock-dir lua-registry)/doc/lua-registry.1"`)
  copy_directories = { "doc" },
  install = {
    -- the CLI (luarocks wraps it to run with the tree's interpreter and paths)
    bin = { ["lua-registry"] = "bin/lua-registry" },
    -- the test kit's servers, installed beside its modules (registry/testing/)
    lua = {
      ["registry.testing.fault_proxy_py"]  = "lua/registry/testing/fault_proxy.py",
      ["registry.testing.token_server_py"] = "lua/registry/testing/token_server.py",
    },
  },
}
