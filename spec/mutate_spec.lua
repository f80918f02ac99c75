-- spec/mutate_spec.lua -- changing images without a daemon (issue 25):
-- registry.mutate (append, config, annotations, compress, recompress,
-- format, platform) and registry.flatten, against a real docker-registry,
-- with umoci 0.4.7 (it unpacks what we append or flatten), skopeo 1.9.3
-- (it reads the configs and the zstd images) and zstd/gzip/tar as the
-- peers; every bad input of the issue fails cleanly with no manifest at
-- the destination.

local registry_server = require "spec.support.registry"
local registry = require "registry"
local images = require "spec.support.images"
local helpers = require "spec.support.helpers"
local cjson = require "cjson"

local must, assert_err = helpers.must, helpers.assert_err
local q = registry_server.quote
local write_file = registry_server.write_file

local function sh(cmd)
  local ok, out = registry_server.sh(cmd)
  assert(ok, cmd .. ": " .. tostring(out))
  return out
end

local function trim(s) return (s:gsub("%s+$", "")) end

local OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
local OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

-- A tree of files for appending: modes, a subdirectory, a symbolic link
-- and a hard link.  mtime: for `touch -d`.
local function make_tree(dir, mtime)
  sh("mkdir -p " .. q(dir .. "/bin") .. " " .. q(dir .. "/etc/app") .. " " .. q(dir .. "/empty"))
  write_file(dir .. "/bin/app", "#!/bin/sh\necho app\n")
  write_file(dir .. "/etc/app/conf", "key=value\n")
  write_file(dir .. "/etc/secret", "s3cret\n")
  sh("chmod 0755 " .. q(dir .. "/bin/app") .. " && chmod 0600 " .. q(dir .. "/etc/secret") ..
     " && chmod 0700 " .. q(dir .. "/empty") ..
     " && ln -s ../etc/app/conf " .. q(dir .. "/bin/conf-link") ..
     " && ln " .. q(dir .. "/bin/app") .. " " .. q(dir .. "/bin/app-hard"))
  if mtime then sh("find " .. q(dir) .. " -exec touch -h -d " .. q(mtime) .. " {} +") end
end

describe("mutate and flatten (issue 25)", function()
  local srv, client, work, H, base, multi

  local function blob(repo, digest) return helpers.blob_bytes(client, repo, digest) end

  -- The manifest and config of an image in the registry.
  local function get(repo, tag)
    local m, info = must(client:get_manifest(repo, tag))
    return m, cjson.decode(blob(repo, m.config.digest)), info
  end

  -- No manifest at repo:tag.
  local function nothing_at(repo, tag) helpers.no_manifest(client, repo, tag) end

  local function blob_file(repo, digest, path)
    write_file(path, blob(repo, digest))
    return path
  end

  local function unpack(ref, bundle)
    local dir = bundle .. "-oci"
    local ok, out = registry_server.skopeo({ "copy", "--src-tls-verify=false", "docker://" .. ref,
      "oci:" .. dir .. ":x" })
    assert(ok, out)
    sh("umoci unpack --rootless --image " .. q(dir .. ":x") .. " " .. q(bundle) .. " 2>&1")
    return bundle .. "/rootfs"
  end

  setup(function()
    srv = registry_server.start()
    H = srv.host
    client = must(registry.new(srv.url))
    work = registry_server.tmpdir()
    base = images.single(work .. "/base", "v1", { seed = "mu1", layers = { 3000 } })
    multi = images.multi(work .. "/multi", "m1", { seed = "mu2", layers = { 2000 } })
    must(registry.push(work .. "/base", H .. "/mu/base:v1"))
    must(registry.push(work .. "/multi", H .. "/mu/multi:m1"))
    make_tree(work .. "/tree")
  end)

  teardown(function()
    if srv then srv:stop() end
    if work and work:match("lua%-registry%-spec%.") then
      os.execute("chmod -R u+rwx " .. q(work) .. "; rm -rf " .. q(work))
    end
  end)

  it("appends a directory: umoci finds the files, modes and links; skopeo the new config", function()
    local sum = must(registry.mutate(H .. "/mu/base:v1", H .. "/mu/app:1", {
      append = { work .. "/tree" },
      config = { env = { FOO = "bar", SEED = false }, entrypoint = { "/bin/app" }, cmd = { "--serve" },
                 labels = { ["org.example.team"] = "infra" }, workdir = "/etc", user = "1000:1000",
                 exposed_ports = { "8080/tcp" }, volumes = { "/data" }, stop_signal = "SIGTERM",
                 author = "spec" },
      annotations = { ["org.example.built-by"] = "mutate_spec" },
    }))
    local m, cfg, info = get("mu/app", "1")
    assert.are.equal(info.digest, sum.digest)
    assert.are.equal(2, #m.layers)
    assert.are.equal(base.layers[1], m.layers[1].digest)
    assert.are.equal(OCI_GZIP, m.layers[2].mediaType)
    assert.are.equal("mutate_spec", m.annotations["org.example.built-by"])
    assert.are.equal("mu1", m.annotations["org.example.seed"])
    assert.are.equal(2, #cfg.rootfs.diff_ids)
    assert.are.equal(2, #cfg.history)

    local ok, out = registry_server.skopeo({ "inspect", "--config", "--tls-verify=false",
      "docker://" .. H .. "/mu/app:1" })
    assert(ok, out)
    local sc = cjson.decode(out).config
    assert.are.same({ "FOO=bar" }, sc.Env)
    assert.are.same({ "/bin/app" }, sc.Entrypoint)
    assert.are.same({ "--serve" }, sc.Cmd)
    assert.are.equal("infra", sc.Labels["org.example.team"])
    assert.are.equal("/etc", sc.WorkingDir)
    assert.are.equal("1000:1000", sc.User)
    assert.truthy(sc.ExposedPorts["8080/tcp"])
    assert.truthy(sc.Volumes["/data"])
    assert.are.equal("SIGTERM", sc.StopSignal)

    local root = unpack(H .. "/mu/app:1", work .. "/app-bundle")
    assert.are.equal("#!/bin/sh\necho app\n", registry_server.read_file(root .. "/bin/app"))
    assert.are.equal("key=value\n", registry_server.read_file(root .. "/etc/app/conf"))
    assert.truthy(registry_server.read_file(root .. "/data/layer1-mu1.txt"))
    assert.are.equal("755", trim(sh("stat -c %a " .. q(root .. "/bin/app"))))
    assert.are.equal("600", trim(sh("stat -c %a " .. q(root .. "/etc/secret"))))
    assert.are.equal("700", trim(sh("stat -c %a " .. q(root .. "/empty"))))
    assert.are.equal("../etc/app/conf", trim(sh("readlink " .. q(root .. "/bin/conf-link"))))
    assert.are.equal(trim(sh("stat -c %i " .. q(root .. "/bin/app"))),
      trim(sh("stat -c %i " .. q(root .. "/bin/app-hard"))))

    -- the layer as packed: in byte order, owner 0:0, mtime 0, a hard link, a symlink
    local f = blob_file("mu/app", m.layers[2].digest, work .. "/l2.tgz")
    local list = sh("gzip -dc " .. q(f) .. " | tar -tv --numeric-owner")
    assert.truthy(list:find("bin/app-hard link to bin/app", 1, true), list)
    assert.truthy(list:find("bin/conf-link -> ../etc/app/conf", 1, true), list)
    assert.is_nil(list:find(" [1-9]%d*/%d+ "), list)
    local names = sh("gzip -dc " .. q(f) .. " | tar -t")
    assert.are.equal("bin/\nbin/app\nbin/app-hard\nbin/conf-link\nempty/\netc/\netc/app/\netc/app/conf\netc/secret\n",
      names)
    assert.truthy(sh("gzip -dc " .. q(f) .. " | tar -tv --full-time"):find("1970-01-01 00:00:00", 1, true))
  end)

  it("keeps diff_ids equal to the SHA-256 of each layer decompressed, history aligned", function()
    local m, cfg = get("mu/app", "1")
    for i, l in ipairs(m.layers) do
      local f = blob_file("mu/app", l.digest, work .. "/d" .. i)
      local cmd = l.mediaType:match("gzip$") and "gzip -dc " or "cat "
      local hex = sh(cmd .. q(f) .. " | sha256sum"):match("^(%x+)")
      assert.are.equal("sha256:" .. hex, cfg.rootfs.diff_ids[i])
    end
    local non_empty = 0
    for _, h in ipairs(cfg.history) do if not h.empty_layer then non_empty = non_empty + 1 end end
    assert.are.equal(#m.layers, non_empty)
    assert.are.equal("lua-registry mutate: append", cfg.history[2].created_by)
  end)

  it("gives the same digest for the same directory copied with other mtimes", function()
    make_tree(work .. "/copy1", "2001-02-03 04:05:06")
    make_tree(work .. "/copy2", "2019-12-31 23:59:59")
    local a = must(registry.mutate(H .. "/mu/base:v1", H .. "/mu/repro:a", { append = { work .. "/copy1" } }))
    local b = must(registry.mutate(H .. "/mu/base:v1", H .. "/mu/repro:b", { append = { work .. "/copy2" } }))
    assert.are.equal(a.digest, b.digest)
  end)

  it("appends .tar (compressed here), .tar.gz and .tar.zst (kept as they are)", function()
    sh("tar -C " .. q(work .. "/tree") .. " -cf " .. q(work .. "/t.tar") .. " etc")
    sh("gzip -c " .. q(work .. "/t.tar") .. " > " .. q(work .. "/t.tar.gz"))
    sh("zstd -q -c " .. q(work .. "/t.tar") .. " > " .. q(work .. "/t.tar.zst"))
    must(registry.mutate(H .. "/mu/base:v1", H .. "/mu/tars:1", {
      append = { work .. "/t.tar", work .. "/t.tar.gz", work .. "/t.tar.zst" } }))
    local m, cfg = get("mu/tars", "1")
    assert.are.equal(4, #m.layers)
    assert.are.same({ OCI_GZIP, OCI_GZIP, OCI_ZSTD },
      { m.layers[2].mediaType, m.layers[3].mediaType, m.layers[4].mediaType })
    local tar_id = "sha256:" .. sh("sha256sum " .. q(work .. "/t.tar")):match("^(%x+)")
    assert.are.same({ tar_id, tar_id, tar_id },
      { cfg.rootfs.diff_ids[2], cfg.rootfs.diff_ids[3], cfg.rootfs.diff_ids[4] })
    assert.are.equal("sha256:" .. sh("sha256sum " .. q(work .. "/t.tar.gz")):match("^(%x+)"), m.layers[3].digest)
    assert.are.equal("sha256:" .. sh("sha256sum " .. q(work .. "/t.tar.zst")):match("^(%x+)"), m.layers[4].digest)
  end)

  it("writes zstd layers that zstd -d | tar -t and skopeo read", function()
    must(registry.mutate(H .. "/mu/base:v1", H .. "/mu/zst:1", { append = { work .. "/tree" }, compress = "zstd" }))
    local m = get("mu/zst", "1")
    assert.are.equal(OCI_ZSTD, m.layers[2].mediaType)
    local f = blob_file("mu/zst", m.layers[2].digest, work .. "/z.zst")
    assert.are.equal("\40\181\47\253", registry_server.read_file(f):sub(1, 4))
    assert.truthy(sh("zstd -dc " .. q(f) .. " | tar -t"):find("etc/app/conf", 1, true))
    local ok, out = registry_server.skopeo({ "copy", "--src-tls-verify=false", "docker://" .. H .. "/mu/zst:1",
      "dir:" .. work .. "/zst-dir" })
    assert(ok, out)
    assert.truthy(registry_server.exists(work .. "/zst-dir/" .. m.layers[2].digest:sub(8)))
    ok, out = registry_server.skopeo({ "inspect", "--tls-verify=false", "docker://" .. H .. "/mu/zst:1" })
    assert(ok, out)
    assert.are.equal(2, #cjson.decode(out).Layers)
  end)

  it("recompress turns gzip and tar layers into zstd with the same diff_ids", function()
    local _, before = get("mu/app", "1")
    must(registry.mutate(H .. "/mu/app:1", H .. "/mu/app:zstd", { compress = "zstd", recompress = true }))
    local m, cfg = get("mu/app", "zstd")
    assert.are.same(before.rootfs.diff_ids, cfg.rootfs.diff_ids)
    for i, l in ipairs(m.layers) do
      assert.are.equal(OCI_ZSTD, l.mediaType)
      local f = blob_file("mu/app", l.digest, work .. "/rz" .. i)
      assert.are.equal(cfg.rootfs.diff_ids[i], "sha256:" .. sh("zstd -dc " .. q(f) .. " | sha256sum"):match("^(%x+)"))
    end
    -- and back to gzip
    must(registry.mutate(H .. "/mu/app:zstd", H .. "/mu/app:gz", { recompress = true }))
    local m2, cfg2 = get("mu/app", "gz")
    assert.are.same(before.rootfs.diff_ids, cfg2.rootfs.diff_ids)
    for _, l in ipairs(m2.layers) do assert.are.equal(OCI_GZIP, l.mediaType) end
  end)

  it("zstd on a Docker image needs format = oci, which rewrites the media types", function()
    local ok, out = registry_server.skopeo({ "copy", "--format", "v2s2", "--src-tls-verify=false",
      "--dest-tls-verify=false", "docker://" .. H .. "/mu/app:gz", "docker://" .. H .. "/mu/docker:1" })
    assert(ok, out)
    local dm = get("mu/docker", "1")
    assert.are.equal("application/vnd.docker.distribution.manifest.v2+json", dm.mediaType)
    local err = assert_err("invalid_argument", registry.mutate(H .. "/mu/docker:1", H .. "/mu/docker:z",
      { append = { work .. "/tree" }, compress = "zstd" }))
    assert.truthy(err.message:find("format", 1, true), err.message)
    nothing_at("mu/docker", "z")
    -- gzip stays Docker, with Docker's layer type
    must(registry.mutate(H .. "/mu/docker:1", H .. "/mu/docker:g", { append = { work .. "/tree" } }))
    local gm = get("mu/docker", "g")
    assert.are.equal("application/vnd.docker.distribution.manifest.v2+json", gm.mediaType)
    assert.are.equal("application/vnd.docker.image.rootfs.diff.tar.gzip", gm.layers[#gm.layers].mediaType)
    must(registry.mutate(H .. "/mu/docker:1", H .. "/mu/docker:z",
      { append = { work .. "/tree" }, compress = "zstd" }, { format = "oci" }))
    local m = get("mu/docker", "z")
    assert.are.equal("application/vnd.oci.image.manifest.v1+json", m.mediaType)
    assert.are.equal("application/vnd.oci.image.config.v1+json", m.config.mediaType)
    assert.are.equal(OCI_GZIP, m.layers[1].mediaType)
    assert.are.equal(OCI_ZSTD, m.layers[#m.layers].mediaType)
  end)

  it("changes one platform of an index with opts.platform, the others as they were", function()
    local sum = must(registry.mutate(H .. "/mu/multi:m1", H .. "/mu/multi:arm", {
      config = { env = { ARM = "yes" } }, index_annotations = { ["org.example.idx"] = "1" },
    }, { platform = "linux/arm64" }))
    local idx, info = must(client:get_manifest("mu/multi", "arm"))
    assert.are.equal(info.digest, sum.digest)
    assert.are.equal("1", idx.annotations["org.example.idx"])
    assert.are.equal(2, #idx.manifests)
    local by = {}
    for _, d in ipairs(idx.manifests) do by[d.platform.architecture] = d end
    assert.are.equal(multi.images[1].digest, by.amd64.digest)
    assert.are_not.equal(multi.images[2].digest, by.arm64.digest)
    local am = must(client:get_manifest("mu/multi", by.arm64.digest))
    local cfg = cjson.decode(blob("mu/multi", am.config.digest))
    assert.are.same({ "SEED=mu2-linux/arm64", "ARM=yes" }, cfg.config.Env)
    -- without a platform: every image changes
    must(registry.mutate(H .. "/mu/multi:m1", H .. "/mu/multi:all", { config = { user = "nobody" } }))
    local all = must(client:get_manifest("mu/multi", "all"))
    for i, d in ipairs(all.manifests) do assert.are_not.equal(multi.images[i].digest, d.digest) end
    -- config.platform moves the image and its index entry
    must(registry.mutate(H .. "/mu/multi:m1", H .. "/mu/multi:v7", { config = { platform = "linux/arm/v7" } },
      { platform = "linux/arm64" }))
    local v7 = must(client:get_manifest("mu/multi", "v7"))
    local archs = {}
    for _, d in ipairs(v7.manifests) do archs[#archs + 1] = d.platform.architecture .. (d.platform.variant or "") end
    table.sort(archs)
    assert.are.same({ "amd64", "armv7" }, archs)
  end)

  it("reads and writes oci:, oci-archive: and docker-archive:, leaving the source layout as it was", function()
    local before = sh("cd " .. q(work .. "/base") .. " && find . -type f | sort | xargs sha256sum")
    local sum = must(registry.mutate("oci:" .. work .. "/base:v1", "oci:" .. work .. "/out:new",
      { append = { work .. "/tree" }, config = { cmd = { "x" } } }))
    assert.are.equal(before, sh("cd " .. q(work .. "/base") .. " && find . -type f | sort | xargs sha256sum"))
    local imgs = must(registry.image.layout_images(work .. "/out"))
    assert.are.equal(sum.digest, imgs[1].digest)
    must(registry.mutate("oci:" .. work .. "/out:new", "oci-archive:" .. work .. "/out.tar",
      { config = { user = "u" } }))
    local d = must(registry.mutate("oci-archive:" .. work .. "/out.tar", "docker-archive:" .. work .. "/d.tar:x/y:1",
      { config = { user = "v" } }))
    assert.truthy(d.digest)
    local back = must(registry.mutate("docker-archive:" .. work .. "/d.tar", H .. "/mu/fromfiles:1",
      { config = { user = "w" } }))
    local _, cfg = get("mu/fromfiles", "1")
    assert.are.equal("w", cfg.config.User)
    assert.are.same({ "x" }, cfg.config.Cmd)
    assert.truthy(back.digest)
  end)

  it("flattens with whiteouts applied: umoci sees the merged file system", function()
    local l1, l2 = work .. "/fl1", work .. "/fl2"
    sh("mkdir -p " .. q(l1 .. "/a") .. " " .. q(l1 .. "/d") .. " " .. q(l2 .. "/a") .. " " .. q(l2 .. "/d"))
    write_file(l1 .. "/a/x", "x1")
    write_file(l1 .. "/a/y", "y1")
    write_file(l1 .. "/d/old", "old")
    write_file(l1 .. "/top", "first")
    write_file(l2 .. "/a/.wh.x", "")
    write_file(l2 .. "/d/.wh..wh..opq", "")
    write_file(l2 .. "/d/new", "new")
    write_file(l2 .. "/top", "second")
    must(registry.mutate(H .. "/mu/base:v1", H .. "/mu/layered:1", { append = { l1, l2 } }))
    local sum = must(registry.flatten(H .. "/mu/layered:1", H .. "/mu/flat:1"))
    local m, cfg = get("mu/flat", "1")
    assert.are.equal(sum.digest, must(client:head_manifest("mu/flat", "1")).digest)
    assert.are.equal(1, #m.layers)
    assert.are.equal(1, #cfg.rootfs.diff_ids)
    assert.are.equal(1, #cfg.history)
    local root = unpack(H .. "/mu/flat:1", work .. "/flat-bundle")
    assert.are.equal("y1", registry_server.read_file(root .. "/a/y"))
    assert.is_nil(registry_server.read_file(root .. "/a/x"))
    assert.is_nil(registry_server.read_file(root .. "/d/old"))
    assert.are.equal("new", registry_server.read_file(root .. "/d/new"))
    assert.are.equal("second", registry_server.read_file(root .. "/top"))
    assert.truthy(registry_server.read_file(root .. "/data/layer1-mu1.txt"))
    local f = blob_file("mu/flat", m.layers[1].digest, work .. "/flat.tgz")
    assert.is_nil(sh("gzip -dc " .. q(f) .. " | tar -t"):find(".wh.", 1, true))
  end)

  describe("bad input: a clear error, nothing pushed", function()
    local function refused(changes, want, opts, src)
      local tag = "bad" .. tostring(math.random(1e9))
      local err = assert_err("invalid_argument", registry.mutate(src or (H .. "/mu/base:v1"), H .. "/mu/bad:" .. tag,
        changes, opts))
      if want then assert.truthy(err.message:find(want, 1, true), err.message) end
      nothing_at("mu/bad", tag)
      return err
    end

    it("a path that does not exist", function()
      refused({ append = { work .. "/no/such/dir" } }, work .. "/no/such/dir")
    end)

    it("a FIFO, a socket, a device in the directory", function()
      local d = work .. "/withfifo"
      sh("mkdir -p " .. q(d) .. " && mkfifo " .. q(d .. "/pipe"))
      refused({ append = { d } }, d .. "/pipe: a FIFO")
      d = work .. "/withsock"
      sh("mkdir -p " .. q(d) .. " && python3 -c " ..
         "'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' " .. q(d .. "/sock"))
      refused({ append = { d } }, d .. "/sock: a socket")
      d = work .. "/withdev"
      sh("mkdir -p " .. q(d))
      if registry_server.sh("mknod " .. q(d .. "/null") .. " c 1 3") then
        refused({ append = { d } }, d .. "/null: a device")
      end
    end)

    it("an append path that is a symlink loop", function()
      sh("ln -s loop " .. q(work .. "/loop"))
      refused({ append = { work .. "/loop" } }, work .. "/loop")
    end)

    it("tar members with an absolute path or ..", function()
      local py = [[python3 -c 'import io,sys,tarfile
t=tarfile.open(sys.argv[1],"w")
ti=tarfile.TarInfo(sys.argv[2]); ti.size=2
t.addfile(ti, io.BytesIO(b"hi")); t.close()' ]]
      sh(py .. q(work .. "/abs.tar") .. " /etc/evil")
      refused({ append = { work .. "/abs.tar" } }, "/etc/evil")
      sh(py .. q(work .. "/up.tar") .. " a/../../evil")
      refused({ append = { work .. "/up.tar" } }, "a/../../evil")
      sh("gzip -c " .. q(work .. "/up.tar") .. " > " .. q(work .. "/up.tar.gz"))
      refused({ append = { work .. "/up.tar.gz" } }, "a/../../evil")
    end)

    it("a .tar.gz that is not gzip, a truncated one, a .tar.zst that is not zstd", function()
      sh("cp " .. q(work .. "/t.tar") .. " " .. q(work .. "/plain.tar.gz"))
      refused({ append = { work .. "/plain.tar.gz" } }, "is not gzip")
      sh("head -c -6 " .. q(work .. "/t.tar.gz") .. " > " .. q(work .. "/cut.tar.gz"))
      refused({ append = { work .. "/cut.tar.gz" } }, "cut.tar.gz: the gzip stream is truncated")
      sh("cp " .. q(work .. "/t.tar.gz") .. " " .. q(work .. "/gz.tar.zst"))
      refused({ append = { work .. "/gz.tar.zst" } }, "is not zstd")
    end)

    it("an index without the platform asked for", function()
      local m, err = registry.mutate(H .. "/mu/multi:m1", H .. "/mu/bad:plat", { config = { user = "x" } },
        { platform = "linux/s390x" })
      assert_err("manifest_not_found", m, err)
      assert.truthy(err.message:find("linux/s390x", 1, true), err.message)
      nothing_at("mu/bad", "plat")
    end)

    it("unknown changes and wrong types name the key", function()
      refused({ appendd = {} }, "appendd")
      refused({ config = { envv = {} } }, "envv")
      refused({ config = { entrypoint = "/bin/sh" } }, "config.entrypoint")
      refused({ config = { labels = { a = 1 } } }, "config.labels.a")
      refused({ compress = "xz" }, "xz")
      refused({ config = { platform = "linux" } }, "linux")
    end)
  end)
end)
