# Petrel: one TypeScript source for Espruino, NodeMCU Lua and Node.
# Every target installs what it needs first (tools/install-deps.sh).

.PHONY: all deps build guard test bench clean

all: build

deps:
	@bash tools/install-deps.sh

build: deps
	@node tools/build.mjs

guard: deps
	@node tools/guard/cli.mjs

test: deps
	@node tools/test.mjs

clean:
	rm -rf dist

.PHONY: bench
bench: build
	@node bench/codec.cjs
