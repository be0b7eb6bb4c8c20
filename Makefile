# Petrel: one TypeScript source for Espruino, NodeMCU Lua and Node.
# Every target installs what it needs first (tools/install-deps.sh).

.PHONY: all deps build guard test bench clean sim boards console flash chaos check-board check-flash

# make BOARD=<name>: that board's artifact in dist/boards/<name>/, checked against its byte budget.
BOARD ?=

ifeq ($(BOARD),)
all: build
else
all: check-board build
	@node tools/boards.mjs $(BOARD)
endif

# Argument mistakes are reported before any build (tools/check-args.mjs).
check-board:
	@node tools/check-args.mjs --board "$(BOARD)" --need-board
check-flash:
	@node tools/check-args.mjs --board "$(BOARD)" --port "$(PORT)" --need-board --need-port

# The board's serial console (Ctrl-] ends it).
PORT ?=
BAUD ?= 115200
console: deps
	@node tools/check-args.mjs --port "$(PORT)" --need-port
	@node tools/console.mjs --port "$(PORT)" --baud $(BAUD)

# make flash BOARD=<name> PORT=/dev/ttyUSB0: builds and packs the board, then writes it to the
# board (NodeMCU: the verified REPL uploader; Espruino: see tools/flash.mjs).
flash: check-flash build
	@node tools/flash.mjs --board "$(BOARD)" --port "$(PORT)" --baud $(BAUD)

# Validates every profile in boards/.
boards: deps
	@node tools/boards.mjs --check

deps:
	@bash tools/install-deps.sh

build: deps
	@node tools/build.mjs

guard: deps
	@node tools/guard/cli.mjs

test: deps
	@node tools/test.mjs

# The sensor node on a simulated board against a mosquitto it starts (or BROKER=host:port), its
# console on this terminal and on a pseudo-terminal (make console PORT=dist/sim-board/tty).
# DEVICES=N: N boards with a live summary. TARGET=node (default) | espruino | lua51 | lua53 | fengari.
TARGET ?= node
sim: build
ifeq ($(TARGET),node)
	@ulimit -n 1048576 2>/dev/null || ulimit -n $$(ulimit -Hn); node dist/node/host-sim/sim.js
else
	@TARGET=$(TARGET) node dist/node/host-sim/sim-board.js
endif

# The chaos lab: boards through a seeded fault schedule, checked at the broker (PASS / FAIL).
# CHAOS_BOARDS (5), CHAOS_SECONDS (60), CHAOS_SEED (printed; repeats a run), CHAOS_BROKEN=1.
# BROKER=nats-cluster or rabbitmq-cluster: the same against three nodes behind HAProxy.
chaos: build
	@node dist/node/host-sim/chaos/cli.js

clean:
	rm -rf dist

.PHONY: bench
# The codec against mqtt-packet, then the session against MQTT.js on a real mosquitto, then the
# fleet ramp (thousands of boards in one process, each library) with the open-file limit raised
# as far as this machine allows (its hard limit; mosquitto, started by the bench, inherits it),
# then the same ramp (Petrel and MQTT.js, 1,000 and 2,500 boards) through HAProxy to a NATS and a
# RabbitMQ cluster of three nodes.
bench: build
	@node bench/codec.cjs
	@node bench/session.cjs
	@ulimit -n 1048576 2>/dev/null || ulimit -n $$(ulimit -Hn); node bench/fleet.cjs
	@ulimit -n 1048576 2>/dev/null || ulimit -n $$(ulimit -Hn); FLEET_BROKER=nats-cluster FLEET_STEPS=1000,2500 FLEET_LIBS=petrel,mqttjs node bench/fleet.cjs
	@ulimit -n 1048576 2>/dev/null || ulimit -n $$(ulimit -Hn); FLEET_BROKER=rabbitmq-cluster FLEET_STEPS=1000,2500 FLEET_LIBS=petrel,mqttjs node bench/fleet.cjs
