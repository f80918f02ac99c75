-- spec/support/images.lua -- the image generator of the test kit
-- (lua/registry/testing/images.lua): OCI layouts with made-up content for
-- spec/image_spec.lua, spec/cli_spec.lua and scripts/demo.lua.
return require "registry.testing.images"
