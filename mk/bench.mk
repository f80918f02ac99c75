# mk/bench.mk -- benchmarks against curl, skopeo, wrk and ab (issue 6).
# Included from the top Makefile (`include mk/bench.mk`), whose LUA and
# BUILD it uses.  Not part of `make test`.
#
# Targets:
#   bench          build, then run bench/run.lua with $(LUA): starts Debian's
#                  docker-registry on loopback, makes a 1 GiB blob and a
#                  4 x 256 MiB OCI layout (under /dev/shm when it has room),
#                  runs each case BENCH_REPS times beside its comparison and
#                  writes bench/RESULTS.md (about 13 minutes on 2 cores),
#                  each ratio beside the one of the file it replaces, and
#                  the goals' table of doc/performance.md
#   bench-quick    one run of each case on a 256 MiB blob, written to
#                  $(BUILD)/bench-quick.md (a smoke test of the scripts)
#   bench-sync     the sync group alone (bench/sync.lua: lua-registry sync
#                  beside skopeo sync and the no-op's floor), written to
#                  $(BUILD)/bench-sync.md
#   bench-pack     the layer-packing group alone (bench/pack.lua: a 288 MiB
#                  directory packed into a gzip layer beside tar | gzip -1,
#                  with and without sha256sum), written to
#                  $(BUILD)/bench-pack.md
#
# Knobs: BENCH_REPS (5), BENCH_OUT (bench/RESULTS.md), BENCH_SIZE_MIB (1024).
# BENCH_PAGE_REPORTING=keep: leave a guest's free page reporting on (by
# default, run as root, the bench holds it off for the run; see bench/run.lua).
# Debian packages: docker-registry skopeo curl openssl wrk apache2-utils
# (ab) time iproute2 (ss) python3.

BENCH_REPS     ?= 5
BENCH_OUT      ?= bench/RESULTS.md
BENCH_SIZE_MIB ?= 1024
BENCH_PKGS      = docker-registry skopeo curl openssl wrk apache2-utils time iproute2 python3

.PHONY: bench bench-quick bench-sync bench-pack bench-deps

bench-deps:
	@./scripts/deps.sh $(BENCH_PKGS)

bench: all bench-deps
	BENCH_BUILD=$(BUILD) BENCH_REPS=$(BENCH_REPS) BENCH_OUT=$(BENCH_OUT) \
	    BENCH_SIZE_MIB=$(BENCH_SIZE_MIB) $(LUA) bench/run.lua

bench-quick: all bench-deps
	BENCH_BUILD=$(BUILD) BENCH_OUT=$(BUILD)/bench-quick.md $(LUA) bench/run.lua --quick

bench-sync: all bench-deps
	BENCH_BUILD=$(BUILD) BENCH_ONLY=sync BENCH_REPS=$(BENCH_REPS) BENCH_OUT=$(BUILD)/bench-sync.md \
	    $(LUA) bench/run.lua

bench-pack: all bench-deps
	BENCH_BUILD=$(BUILD) BENCH_ONLY=pack BENCH_REPS=$(BENCH_REPS) BENCH_OUT=$(BUILD)/bench-pack.md \
	    $(LUA) bench/run.lua
