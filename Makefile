# Coffer's entry points. Every target does its own set-up on a fresh Debian 12 machine.
.PHONY: all setup build test demo bench soak format format-check clean

JOBS ?= $(shell nproc)
BUILD ?= build/release

all: build

setup:
	@scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithAsserts
	cmake --build $(BUILD) -j $(JOBS)

test:
	@scripts/test.sh

demo: build
	@scripts/demo.sh $(BUILD)

bench: setup
	cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DCOFFER_BENCH=ON
	cmake --build build/bench -j $(JOBS)
	@scripts/bench.sh build/bench

# 100,000 seeds of the consensus simulator (about half an hour on two cores).
soak: build
	COFFER_SIM_SEEDS=100000 $(BUILD)/consensus/consensus_sim_test --gtest_filter='ConsensusSim.SeedSweep*'

format:
	@scripts/format.sh --fix

format-check:
	@scripts/format.sh

clean:
	rm -rf build
