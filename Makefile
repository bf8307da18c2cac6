# palyrad: top-level, non-recursive GNU Makefile.
#
#   make          build everything into build/
#   make deps     install missing Debian packages (apt-get), idempotent
#   make run      deps + build + palyrad in the foreground, state in ./var
#   make test     deps + build + every test (unit, integration)
#   make bench    the benchmark table (figures beside same-run ceilings)
#   make chaos    kills and reloads under load, then invariants (CHAOS_SECONDS)
#   make soak     RSS and descriptors under load over time (SOAK_SECONDS)
#   make fuzz     every libFuzzer target of tests/fuzz (FUZZ_SECONDS each)
#   make install  DESTDIR= PREFIX=/usr/local: the host service; make uninstall

.DEFAULT_GOAL := all
SHELL := /bin/bash

CC	?= cc
# V=1 shows every command; by default one short line per file.
ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-8s %s\n' $(1) $(2)
endif
B	:= build
GEN	:= $(B)/gen
OBJ	:= $(B)/obj

PKGS_ALL := libevent libevent_pthreads libnghttp2 libprotobuf-c sqlite3 \
	libcurl jansson libsodium libcrypto libssl libseccomp

WARN	:= -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wno-unused-parameter
HARDEN	:= -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE \
	-fno-strict-overflow -fno-delete-null-pointer-checks
OPT	?= -O2 -g
CFLAGS_BASE := -std=c17 -D_GNU_SOURCE $(OPT) $(WARN) $(HARDEN) -pipe \
	-iquote common -I$(GEN) -I$(GEN)/proto
LDFLAGS_BASE := -pie -Wl,-z,relro,-z,now -Wl,-z,noexecstack -Wl,--as-needed

ifeq ($(SANITIZE),1)
# -fno-wrapv: HARDEN's -fno-strict-overflow makes signed overflow and
# shifts into the sign bit defined, and UBSan silent about them.
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-wrapv
LDFLAGS_BASE += -fsanitize=address,undefined
endif

pc = $(shell pkg-config --cflags --libs $(1) 2>/dev/null)
pc_cflags = $(shell pkg-config --cflags $(1) 2>/dev/null)
pc_libs = $(shell pkg-config --libs $(1) 2>/dev/null)

CFLAGS	:= $(CFLAGS_BASE) $(call pc_cflags,$(PKGS_ALL)) $(EXTRA_CFLAGS)
LDFLAGS	:= $(LDFLAGS_BASE) $(EXTRA_LDFLAGS)

# Libraries each program links: only what it needs (DESIGN section 2).
LIBS_SUP	:= $(call pc_libs,libevent libprotobuf-c libsodium)
LIBS_FRONT	:= $(call pc_libs,libevent libevent_openssl libssl libnghttp2 libprotobuf-c jansson libsodium libcrypto libseccomp)
LIBS_WORKER	:= $(call pc_libs,libevent libprotobuf-c libcurl jansson libsodium libssl libcrypto libseccomp) -lm
LIBS_JOURNALD	:= $(call pc_libs,libevent libprotobuf-c sqlite3 jansson libsodium libcrypto libseccomp) -lm
LIBS_CTL	:= $(call pc_libs,libcurl libnghttp2 libprotobuf-c jansson libcrypto)
LIBS_TEST	:= $(call pc_libs,cmocka libevent libprotobuf-c libsodium libcrypto libseccomp)

# Protocol buffers: C code generated at build time, never committed.
PROTOS	:= proto/palyra/v1/gateway.proto proto/grpc/health/v1/health.proto \
	proto/ipc.proto proto/grpc/reflection/v1/reflection.proto \
	proto/grpc/reflection/v1alpha/reflection.proto \
	proto/palyra/internal/descriptor_index.proto
PROTO_C	:= $(patsubst proto/%.proto,$(GEN)/proto/%.pb-c.c,$(PROTOS))
PROTO_H	:= $(PROTO_C:.c=.h)
PROTO_O	:= $(patsubst $(GEN)/%.c,$(OBJ)/gen/%.o,$(PROTO_C))

$(GEN)/proto/%.pb-c.c $(GEN)/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)/proto
	$(call msg,PROTOC,$<)
	$(Q)protoc-c --proto_path=proto --c_out=$(GEN)/proto $<

$(OBJ)/gen/%.o: $(GEN)/%.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CFLAGS) -Wno-missing-prototypes -MMD -MP -c -o $@ $<

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

COMMON_SRC	:= $(wildcard common/*.c)
COMMON_O	:= $(COMMON_SRC:%.c=$(OBJ)/%.o) $(PROTO_O)
COMMON_A	:= $(B)/libpalyra-common.a

$(COMMON_A): $(COMMON_O)
	@mkdir -p $(dir $@)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

define program
$(1)_SRC := $$(wildcard $(2)/*.c)
$(1)_O := $$($(1)_SRC:%.c=$$(OBJ)/%.o)
$(3): $$($(1)_O) $$(COMMON_A)
	@mkdir -p $$(dir $$@)
	$$(call msg,LD,$$@)
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$($(1)_O) $$(COMMON_A) $(4)
ALL_BIN += $(3)
endef

$(eval $(call program,SUP,supervisor,$(B)/bin/palyrad,$$(LIBS_SUP)))
$(eval $(call program,CTL,ctl,$(B)/bin/palyractl,$$(LIBS_CTL)))
$(eval $(call program,FRONT,front,$(B)/libexec/palyra-front,$$(LIBS_FRONT)))
$(eval $(call program,WORKER,worker,$(B)/libexec/palyra-worker,$$(LIBS_WORKER)))
$(eval $(call program,JOURNALD,journald,$(B)/libexec/palyra-journald,$$(LIBS_JOURNALD)))

# gRPC server reflection: the descriptors of the services palyra-front
# serves, compiled in as a FileDescriptorSet (front/reflection.c).
REFLECT_PROTOS := proto/palyra/v1/gateway.proto \
	proto/grpc/health/v1/health.proto \
	proto/grpc/reflection/v1/reflection.proto \
	proto/grpc/reflection/v1alpha/reflection.proto
$(GEN)/descriptor_set.pb: $(REFLECT_PROTOS)
	@mkdir -p $(GEN)
	$(call msg,PROTOC,$@)
	$(Q)protoc-c --proto_path=proto --include_imports \
		--descriptor_set_out=$@ $(REFLECT_PROTOS)
$(GEN)/descriptor_set.c: $(GEN)/descriptor_set.pb
	$(call msg,XXD,$@)
	$(Q){ echo '/* Generated from $(notdir $<) by the Makefile. */'; \
		echo '#include <stddef.h>'; \
		echo 'const unsigned char fe_descriptor_set[] = {'; \
		xxd -i < $<; echo '};'; \
		echo 'const size_t fe_descriptor_set_len = sizeof(fe_descriptor_set);'; \
	} > $@.tmp && mv $@.tmp $@
FRONT_O += $(OBJ)/gen/descriptor_set.o
$(B)/libexec/palyra-front: $(OBJ)/gen/descriptor_set.o

# The generated headers must exist before any C file is compiled.
$(COMMON_SRC:%.c=$(OBJ)/%.o) $(SUP_O) $(CTL_O) $(FRONT_O) $(WORKER_O) \
	$(JOURNALD_O): | $(PROTO_H)

# Unit tests (cmocka): tests/unit/test_NAME.c -> build/tests/test_NAME.
UNIT_SRC	:= $(wildcard tests/unit/test_*.c)
UNIT_BIN	:= $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
$(UNIT_SRC:%.c=$(OBJ)/%.o): | $(PROTO_H)
$(B)/tests/%: $(OBJ)/tests/unit/%.o $(COMMON_A)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(COMMON_A) $(LIBS_TEST) $(call pc_libs,sqlite3 jansson)
# Tests that include a module of a program link what that module needs.
$(B)/tests/test_http: LIBS_TEST += $(call pc_libs,libcurl libssl)
$(B)/tests/test_embed: LIBS_TEST += $(call pc_libs,libcurl libssl) -lm
$(B)/tests/test_fetch: LIBS_TEST += $(call pc_libs,libcurl)
$(B)/tests/test_memory_rank: LIBS_TEST += -lm
$(B)/tests/test_memory_search: LIBS_TEST += -lm

# Benchmark helpers: tests/bench/NAME.c -> build/bench/NAME.
BENCH_SRC	:= $(wildcard tests/bench/*.c)
BENCH_BIN	:= $(patsubst tests/bench/%.c,$(B)/bench/%,$(BENCH_SRC))
$(BENCH_SRC:%.c=$(OBJ)/%.o): | $(PROTO_H)
$(B)/bench/%: $(OBJ)/tests/bench/%.o $(COMMON_A)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(COMMON_A) $(call pc_libs,libevent libprotobuf-c sqlite3 libsodium libcrypto)

# Fuzzing (tests/fuzz, README "Fuzzing"): libFuzzer targets built by clang
# with ASan and UBSan in their own object tree, never mixed with the gcc
# objects: common/ (but the sandbox) and the generated protobuf code are
# compiled again into $(B)/fuzz/obj; a module of a program is included by
# its target, as the unit tests do. -fno-strict-overflow is left out so
# that UBSan reports a signed overflow; -Werror too, as the gcc build
# already enforces it and clang warns a little differently. `make fuzz`
# runs each target FUZZ_SECONDS (60); `make check` a few seconds each.
FUZZ_CC		:= clang
FUZZ_SECONDS	?= 60
FUZZ_SAN	:= -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
FUZZ_OBJ	:= $(B)/fuzz/obj
FUZZ_DROP	:= -O% -D_FORTIFY_SOURCE=2 -fno-strict-overflow -Werror
FUZZ_CFLAGS	:= $(filter-out $(FUZZ_DROP),$(CFLAGS)) -O1 -g \
	-Wno-format-nonliteral $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_SRC	:= $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN	:= $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRC))
FUZZ_COMMON_O	:= $(patsubst %.c,$(FUZZ_OBJ)/%.o, \
		$(filter-out common/sandbox%,$(COMMON_SRC))) \
	$(patsubst $(GEN)/%.c,$(FUZZ_OBJ)/gen/%.o,$(PROTO_C))
FUZZ_COMMON_A	:= $(B)/fuzz/libpalyra-common.a
FUZZ_LIBS	:= $(call pc_libs,libprotobuf-c jansson libsodium libcrypto)
$(FUZZ_OBJ)/gen/%.o: $(GEN)/%.c
	@mkdir -p $(dir $@)
	$(call msg,FUZZCC,$<)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -Wno-missing-prototypes -MMD -MP -c -o $@ $<
$(FUZZ_OBJ)/%.o: %.c | $(PROTO_H)
	@mkdir -p $(dir $@)
	$(call msg,FUZZCC,$<)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<
$(FUZZ_COMMON_A): $(FUZZ_COMMON_O)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
$(FUZZ_BIN): $(B)/fuzz/%: $(FUZZ_OBJ)/tests/fuzz/%.o $(FUZZ_COMMON_A)
	$(call msg,LD,$@)
	$(Q)$(FUZZ_CC) $(LDFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< \
		$(FUZZ_COMMON_A) $(FUZZ_LIBS)
$(B)/fuzz/fuzz_grpc: FUZZ_LIBS += $(call pc_libs,libcurl)
$(B)/fuzz/fuzz_embed: FUZZ_LIBS += $(call pc_libs,libcurl libssl libevent) -lm

fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_ARTIFACTS=$(abspath $(B))/fuzz/crashes \
		tests/fuzz/run.sh $(FUZZ_BIN)

# Python stubs for the integration tests, generated by Debian's grpc-tools.
PY_GEN := $(B)/py
$(PY_GEN)/.stamp: $(PROTOS)
	@mkdir -p $(PY_GEN)
	$(call msg,PYGEN,$(PY_GEN))
	$(Q)/usr/bin/python3 -m grpc_tools.protoc -Iproto --python_out=$(PY_GEN) \
		--grpc_python_out=$(PY_GEN) $(PROTOS)
	@touch $@

all: $(ALL_BIN) $(UNIT_BIN) $(BENCH_BIN)

DEBS := build-essential pkg-config libevent-dev libnghttp2-dev \
	libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev sqlite3 \
	libcurl4-openssl-dev libjansson-dev libsodium-dev libssl-dev \
	libseccomp-dev libcmocka-dev python3-grpcio python3-grpc-tools \
	python3-protobuf python3-pytest nghttp2-client nghttp2-server curl \
	mandoc procps python3-nacl openssl xxd clang

deps:
	@missing=""; for p in $(DEBS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q \
			--no-install-recommends $$missing; \
	fi

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p var
	@echo "palyrad: gRPC on 127.0.0.1:7443 (h2c), HTTP on 127.0.0.1:7142, state in ./var"
	@echo "palyrad: in another shell: build/bin/palyractl token create --tenant default"
	exec $(B)/bin/palyrad -d -f etc/palyrad.conf

# Runs every test of an already built tree.
check: all $(FUZZ_BIN) $(PY_GEN)/.stamp
	@out=$$(mandoc -T lint -W warning man/*.[158] 2>&1); \
		if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; \
		echo "man: mandoc -T lint clean"
	@tests/run-unit.sh $(UNIT_BIN)
	@FUZZ_SECONDS=2 tests/fuzz/run.sh $(FUZZ_BIN)
	@# LeakSanitizer stops the world with ptrace, which the children's
	@# seccomp filters kill: leaks are checked by the unit tests only.
	@PALYRA_BUILD=$(abspath $(B)) PALYRA_SANITIZE=$(SANITIZE) \
		ASAN_OPTIONS=detect_leaks=0 \
		/usr/bin/python3 -m pytest -q \
		-p no:cacheprovider tests/integration

test: deps
	@$(MAKE) --no-print-directory check

bench: deps
	@$(MAKE) --no-print-directory all
	@PALYRA_BUILD=$(abspath $(B)) tests/bench/run.sh

# README "Reliability". `make check` runs the chaos for 20 s through
# tests/integration/test_chaos.py; CHAOS_SEED=N replays a run's choices.
CHAOS_SECONDS	?= 60
SOAK_SECONDS	?= 600
chaos: deps
	@$(MAKE) --no-print-directory all $(PY_GEN)/.stamp
	@PALYRA_BUILD=$(abspath $(B)) CHAOS_SECONDS=$(CHAOS_SECONDS) \
		CHAOS_SEED=$(CHAOS_SEED) /usr/bin/python3 tests/chaos/chaos.py

soak: deps
	@$(MAKE) --no-print-directory all $(PY_GEN)/.stamp
	@PALYRA_BUILD=$(abspath $(B)) SOAK_SECONDS=$(SOAK_SECONDS) \
		/usr/bin/python3 tests/soak/soak.py

# Installation (DESIGN section 5): `make install DESTDIR= PREFIX=/usr/local`
# copies an already built tree $(B) (building it if needed) into
# $(DESTDIR)$(PREFIX); the configuration goes to $(DESTDIR)/etc/palyra.
# palyrad finds its helpers in ../libexec/palyra relative to itself, so the
# installed tree needs no wrapper and no compiled-in path. `make uninstall`
# (same DESTDIR and PREFIX) removes exactly what install put there, except a
# configuration the operator changed; the state directory is never touched.
PREFIX		?= /usr/local
DESTDIR		?=
INSTALL		?= install
ifeq ($(PREFIX),/usr)
UNITDIR		?= /lib/systemd/system
else
UNITDIR		?= $(PREFIX)/lib/systemd/system
endif
INST_SBIN	:= $(DESTDIR)$(PREFIX)/sbin
INST_BIN	:= $(DESTDIR)$(PREFIX)/bin
INST_LIBEXEC	:= $(DESTDIR)$(PREFIX)/libexec/palyra
INST_MAN	:= $(DESTDIR)$(PREFIX)/share/man
INST_UNIT	:= $(DESTDIR)$(UNITDIR)
INST_SYSUSERS	:= $(DESTDIR)$(PREFIX)/lib/sysusers.d
INST_TMPFILES	:= $(DESTDIR)$(PREFIX)/lib/tmpfiles.d
INST_ETC	:= $(DESTDIR)/etc/palyra
INST_COMPL	:= $(DESTDIR)$(PREFIX)/share/bash-completion/completions
INST_HELPERS	:= palyra-front palyra-worker palyra-journald
INST_MANPAGES	:= $(wildcard man/*.[158])
INST_STAGE	:= $(B)/install

# The shipped etc/palyrad.conf is the development one (state in ./var): the
# installed copy keeps everything but puts the state in /var/lib/palyra and
# runs the front and journald as the service user of palyra.sysusers.
define inst_stage
	@mkdir -p $(INST_STAGE)
	$(Q)sed -e '1s|.*|# palyrad.conf: installed by make install; see palyrad.conf(5).|' \
		-e 's|^# Relative paths are resolved .*|# The service user of palyra-front and palyra-journald.|' \
		-e 's|^# from the top of the source tree, .*|user "_palyra"|' \
		-e 's|^state-dir "var"|state-dir "/var/lib/palyra"|' \
		etc/palyrad.conf > $(INST_STAGE)/palyrad.conf
	$(Q)sed -e 's|@SBINDIR@|$(PREFIX)/sbin|g' etc/palyrad.service \
		> $(INST_STAGE)/palyrad.service
endef

# palyractl's bash completion, generated from its own command table.
$(INST_STAGE)/palyractl.bash: $(B)/bin/palyractl
	@mkdir -p $(INST_STAGE)
	$(Q)$(B)/bin/palyractl completion bash > $@

install: $(ALL_BIN) $(INST_STAGE)/palyractl.bash
	$(inst_stage)
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)$(INSTALL) -d -m 0755 $(INST_SBIN) $(INST_BIN) $(INST_LIBEXEC) \
		$(INST_MAN)/man1 $(INST_MAN)/man5 $(INST_MAN)/man8 \
		$(INST_UNIT) $(INST_SYSUSERS) $(INST_TMPFILES) $(INST_ETC) \
		$(INST_COMPL)
	$(Q)$(INSTALL) -m 0755 $(B)/bin/palyrad $(INST_SBIN)/palyrad
	$(Q)$(INSTALL) -m 0644 $(INST_STAGE)/palyractl.bash $(INST_COMPL)/palyractl
	$(Q)$(INSTALL) -m 0755 $(B)/bin/palyractl $(INST_BIN)/palyractl
	$(Q)for h in $(INST_HELPERS); do \
		$(INSTALL) -m 0755 $(B)/libexec/$$h $(INST_LIBEXEC)/$$h || exit 1; \
	done
	$(Q)for m in $(INST_MANPAGES); do \
		$(INSTALL) -m 0644 $$m $(INST_MAN)/man$${m##*.}/ || exit 1; \
	done
	$(Q)$(INSTALL) -m 0644 $(INST_STAGE)/palyrad.service $(INST_UNIT)/palyrad.service
	$(Q)$(INSTALL) -m 0644 etc/palyra.sysusers $(INST_SYSUSERS)/palyra.conf
	$(Q)$(INSTALL) -m 0644 etc/palyra.tmpfiles $(INST_TMPFILES)/palyra.conf
	$(Q)if [ -e $(INST_ETC)/palyrad.conf ]; then \
		echo "install: keeping $(INST_ETC)/palyrad.conf, example in palyrad.conf.example"; \
		$(INSTALL) -m 0644 $(INST_STAGE)/palyrad.conf $(INST_ETC)/palyrad.conf.example; \
	else \
		$(INSTALL) -m 0644 $(INST_STAGE)/palyrad.conf $(INST_ETC)/palyrad.conf; \
	fi

uninstall:
	$(inst_stage)
	$(call msg,UNINSTALL,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(INST_SBIN)/palyrad $(INST_BIN)/palyractl \
		$(addprefix $(INST_LIBEXEC)/,$(INST_HELPERS)) \
		$(foreach m,$(INST_MANPAGES),$(INST_MAN)/man$(subst .,,$(suffix $(m)))/$(notdir $(m))) \
		$(INST_UNIT)/palyrad.service $(INST_SYSUSERS)/palyra.conf \
		$(INST_TMPFILES)/palyra.conf $(INST_COMPL)/palyractl
	$(Q)rmdir $(INST_LIBEXEC) 2>/dev/null || true
	$(Q)for f in palyrad.conf palyrad.conf.example; do \
		[ -e $(INST_ETC)/$$f ] || continue; \
		if cmp -s $(INST_STAGE)/palyrad.conf $(INST_ETC)/$$f; then \
			rm -f $(INST_ETC)/$$f; \
		else \
			echo "uninstall: keeping $(INST_ETC)/$$f (changed)"; \
		fi; \
	done
	$(Q)rmdir $(INST_ETC) 2>/dev/null || true

.PHONY: install uninstall

clean:
	rm -rf $(B)

.PHONY: all deps run check test bench fuzz chaos soak clean

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)
-include $(shell find $(FUZZ_OBJ) -name '*.d' 2>/dev/null)
