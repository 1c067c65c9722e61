package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Metering: how a callback that loops forever is stopped without a
// goroutine per call.
//
// wazero can interrupt a guest from outside only through
// WithCloseOnContextDone, which costs a goroutine, a channel and a closure
// on every call from Go into wasm (tetratelabs/wazero#2466), more than a
// policy's whole callback. Instead, every module is rewritten once, when
// it is compiled, so that its code meters itself, as wasmtime's fuel and
// the gas instrumenters of blockchain runtimes do:
//
//   - a mutable i64 global, the fuel, is appended to the module's globals;
//   - at every function entry and every loop header, the code subtracts the
//     cost of what runs before the next such point (the instructions of the
//     function or loop body outside nested loops, with calls to imports and
//     bulk memory operations weighted as the host work they are), and when
//     the fuel goes negative calls the import novaedge_meter.refuel, which
//     returns a new allowance;
//   - an instruction whose work grows with an operand (memory.fill, .copy
//     and .init; table.fill, .copy, .init and .grow) is also charged that
//     operand, its length, just before it runs, through a scratch local
//     appended to the function's locals: a loop of memory.fill over the
//     whole memory would otherwise run thousands of times between two
//     checks of the clock; memory.grow, which may copy the memory, is
//     charged the memory's current size;
//   - refuel runs on the guest's own goroutine: it checks the callback's
//     time against its limit (deadline.go) and either refills the fuel or
//     stops the guest with a trap.
//
// The guest cannot tamper with the meter: its code was validated against
// the module as written, so no instruction of it can name the appended
// global or import (their indices did not exist), and element segments
// and ref.func are renumbered with the functions, so no table slot can
// reach refuel. A module that imports anything from novaedge_meter itself
// is refused. Straight-line code needs no meter: it is bounded by the size
// of the module; only loops and calls repeat.
//
// The fuel is not reset between calls: a call starts with what the last
// one left, at most meterAllowance, so the first check of a call comes
// within one allowance. The cost units are instructions, roughly a
// nanosecond each in compiled code; an allowance of 1<<20 makes a running
// loop check the clock about every millisecond.

// meterModule is the import module of the meter's host function; guests
// may not import from it.
const meterModule = "novaedge_meter"

// meterRefuel is the name of the host function called when the fuel runs
// out: () -> i64, the new fuel.
const meterRefuel = "refuel"

// meterAllowance is the fuel refuel grants.
const meterAllowance = 1 << 20

// Weights of the instructions that stand for more than one unit of work.
const (
	costHostCall = 200 // a call to an import (host function) or call_indirect, which may reach one
	costBulk     = 200 // memory.grow, memory.fill/copy/init, table.grow/fill/copy/init
)

// Shifts of the charge for the length operand of a bulk instruction: a
// memory operation costs one unit per 1<<bulkMemoryShift bytes (tens of
// bytes a nanosecond move through memory.fill and memory.copy), a table
// operation one per element.
const (
	bulkMemoryShift = 4
	bulkTableShift  = 0
)

// bulkShift returns the charge shift of an instruction whose length operand
// is on top of the stack, and whether op is one.
func bulkShift(op uint32) (uint64, bool) {
	switch op {
	case 0xfc08, 0xfc0a, 0xfc0b: // memory.init, memory.copy, memory.fill
		return bulkMemoryShift, true
	case 0xfc0c, 0xfc0e, 0xfc0f, 0xfc11: // table.init, table.copy, table.grow, table.fill
		return bulkTableShift, true
	}
	return 0, false
}

// Section ids of the binary format.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// sectionRank orders the known sections as the binary format requires.
var sectionRank = map[byte]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5, secTag: 6,
	secGlobal: 7, secExport: 8, secStart: 9, secElement: 10, secDataCount: 11, secCode: 12, secData: 13,
}

// errMeter marks a module the meter cannot rewrite (malformed, or using
// instructions wazero does not run either).
var errMeter = errors.New("wasm: meter")

type section struct {
	id      byte
	payload []byte
}

// meter returns code rewritten to meter itself (see above). It refuses a
// module that imports from novaedge_meter, and a malformed one.
func meter(code []byte) ([]byte, error) {
	if len(code) < 8 || !bytes.Equal(code[:4], []byte("\x00asm")) {
		return nil, fmt.Errorf("%w: not a wasm binary", errMeter)
	}
	if binary.LittleEndian.Uint32(code[4:8]) != 1 {
		return nil, fmt.Errorf("%w: unsupported binary version %d (a component, not a core module?)", errMeter, binary.LittleEndian.Uint32(code[4:8]))
	}
	var secs []section
	r := &reader{b: code, pos: 8}
	for !r.done() {
		id := r.byte()
		n := r.u32()
		payload := r.bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("%w: section %d: %v", errMeter, id, r.err)
		}
		if err := checkCount(id, payload); err != nil {
			return nil, err
		}
		secs = append(secs, section{id, payload})
	}
	m := &meterer{}
	if err := m.scan(secs); err != nil {
		return nil, err
	}
	return m.rewrite(secs)
}

// checkCount refuses a vector section that declares more entries than it
// has bytes (every entry takes at least one). wazero makes room for the
// declared count before it reads an entry: a few hundred bytes declaring a
// billion imports exhausted the process's memory, a fatal error no recover
// catches. Only modules that pass go to wazero (Runtime.Compile).
func checkCount(id byte, payload []byte) error {
	switch id {
	case secType, secImport, secFunction, secTable, secMemory, secGlobal, secExport,
		secElement, secCode, secData, secTag:
	default:
		return nil
	}
	r := &reader{b: payload}
	n := r.u32()
	if r.err != nil || int64(n) > int64(len(payload)) {
		return fmt.Errorf("%w: section %d declares %d entries in %d bytes: malformed", errMeter, id, n, len(payload))
	}
	return nil
}

// meterer carries what the rewrite needs to know of the module.
type meterer struct {
	nTypes        uint32
	refuelType    uint32 // index of the type () -> i64
	addType       bool   // the type must be appended
	nFuncImports  uint32 // function imports before refuel's
	nGlobalImport uint32
	nGlobals      uint32   // defined globals
	fuel          uint32   // index of the fuel global
	refuel        uint32   // function index of refuel
	typeParams    []uint32 // number of parameters, by type index
	funcTypes     []uint32 // type index of each defined function
}

// scan reads the type, import and global sections.
func (m *meterer) scan(secs []section) error {
	m.refuelType = math.MaxUint32
	for _, s := range secs {
		r := &reader{b: s.payload}
		switch s.id {
		case secType:
			m.nTypes = r.u32()
			for i := uint32(0); i < m.nTypes && r.err == nil; i++ {
				if r.byte() != 0x60 {
					return fmt.Errorf("%w: type %d is not a function type", errMeter, i)
				}
				np := r.u32()
				r.bytes(int(np))
				m.typeParams = append(m.typeParams, np)
				nr := r.u32()
				res := r.bytes(int(nr))
				if np == 0 && nr == 1 && res[0] == 0x7e && m.refuelType == math.MaxUint32 && r.err == nil {
					m.refuelType = i
				}
			}
		case secImport:
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				mod := r.name()
				field := r.name()
				if mod == meterModule {
					return fmt.Errorf("wasm: the module imports %s.%s: the %s namespace is the host's metering and may not be imported", mod, field, meterModule)
				}
				switch kind := r.byte(); kind {
				case 0x00: // func
					if t := r.u32(); t >= m.nTypes && r.err == nil {
						return fmt.Errorf("%w: import %s.%s has type %d, which does not exist", errMeter, mod, field, t)
					}
					m.nFuncImports++
				case 0x01: // table
					r.byte()
					r.limits()
				case 0x02: // memory
					r.limits()
				case 0x03: // global
					r.byte()
					r.byte()
					m.nGlobalImport++
				case 0x04: // tag
					r.byte()
					r.u32()
				default:
					return fmt.Errorf("%w: import %d has unknown kind %#x", errMeter, i, kind)
				}
			}
		case secGlobal:
			m.nGlobals = r.u32()
		case secFunction:
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				t := r.u32()
				if t >= m.nTypes && r.err == nil {
					return fmt.Errorf("%w: function %d has type %d, which does not exist", errMeter, i, t)
				}
				m.funcTypes = append(m.funcTypes, t)
			}
		}
		if r.err != nil {
			return fmt.Errorf("%w: section %d: %v", errMeter, s.id, r.err)
		}
	}
	if m.refuelType == math.MaxUint32 {
		m.refuelType, m.addType = m.nTypes, true
	}
	m.refuel = m.nFuncImports
	m.fuel = m.nGlobalImport + m.nGlobals
	return nil
}

// fn renumbers a function index of the original module.
func (m *meterer) fn(i uint32) uint32 {
	if i >= m.nFuncImports {
		return i + 1
	}
	return i
}

// rewrite builds the metered module.
func (m *meterer) rewrite(secs []section) ([]byte, error) {
	var out []section
	have := map[byte]bool{}
	for _, s := range secs {
		have[s.id] = true
		var p []byte
		var err error
		switch s.id {
		case secType:
			p = s.payload
			if m.addType {
				p = appendCount(s.payload, []byte{0x60, 0x00, 0x01, 0x7e})
			}
		case secImport:
			p = appendCount(s.payload, m.importEntry())
		case secGlobal:
			p, err = m.globals(s.payload)
		case secExport:
			p, err = m.exports(s.payload)
		case secStart:
			r := &reader{b: s.payload}
			i := r.u32()
			if r.err != nil {
				return nil, fmt.Errorf("%w: start section: %v", errMeter, r.err)
			}
			p = appendU32(nil, m.fn(i))
		case secElement:
			p, err = m.elements(s.payload)
		case secCode:
			p, err = m.code(s.payload)
		case secCustom:
			p, err = m.custom(s.payload)
		default:
			p = s.payload
		}
		if err != nil {
			return nil, err
		}
		out = append(out, section{s.id, p})
	}
	if !have[secType] {
		out = insertSection(out, section{secType, []byte{1, 0x60, 0x00, 0x01, 0x7e}})
	}
	if !have[secImport] {
		out = insertSection(out, section{secImport, append([]byte{1}, m.importEntry()...)})
	}
	if !have[secGlobal] {
		out = insertSection(out, section{secGlobal, append([]byte{1}, fuelGlobal()...)})
	}
	b := append([]byte(nil), "\x00asm\x01\x00\x00\x00"...)
	for _, s := range out {
		b = append(b, s.id)
		b = appendU32(b, uint32(len(s.payload)))
		b = append(b, s.payload...)
	}
	return b, nil
}

// insertSection puts s before the first known section that must follow it.
func insertSection(secs []section, s section) []section {
	rank := sectionRank[s.id]
	for i, t := range secs {
		if t.id != secCustom && sectionRank[t.id] > rank {
			return append(secs[:i], append([]section{s}, secs[i:]...)...)
		}
	}
	return append(secs, s)
}

// importEntry is the import of refuel.
func (m *meterer) importEntry() []byte {
	b := appendName(nil, meterModule)
	b = appendName(b, meterRefuel)
	b = append(b, 0x00)
	return appendU32(b, m.refuelType)
}

// fuelGlobal is the fuel's definition: (mut i64) starting at one allowance.
func fuelGlobal() []byte {
	b := []byte{0x7e, 0x01, 0x42}
	b = appendS64(b, meterAllowance)
	return append(b, 0x0b)
}

// appendCount returns a vector payload with one more element, entry.
func appendCount(payload, entry []byte) []byte {
	r := &reader{b: payload}
	n := r.u32()
	b := appendU32(nil, n+1)
	b = append(b, payload[r.pos:]...)
	return append(b, entry...)
}

// globals renumbers ref.func in the globals' initializers and appends the
// fuel.
func (m *meterer) globals(payload []byte) ([]byte, error) {
	return vector(payload, "global", fuelGlobal(), func(i uint32, r *reader, b []byte) ([]byte, error) {
		b = append(b, r.byte(), r.byte()) // valtype, mutability
		b, err := m.constExpr(b, r)
		if err != nil {
			return nil, fmt.Errorf("%w: global %d: %v", errMeter, i, err)
		}
		return b, nil
	})
}

// vector rewrites a section that is a vector of entries: entry copies the
// i-th one from r onto b, changed as the meter needs; extra, if not nil, is
// one more entry appended after them.
func vector(payload []byte, section string, extra []byte, entry func(i uint32, r *reader, b []byte) ([]byte, error)) ([]byte, error) {
	r := &reader{b: payload}
	n := r.u32()
	count := n
	if extra != nil {
		count++
	}
	b := appendU32(nil, count)
	for i := uint32(0); i < n && r.err == nil; i++ {
		var err error
		if b, err = entry(i, r, b); err != nil {
			return nil, err
		}
	}
	if r.err != nil || !r.done() {
		return nil, fmt.Errorf("%w: %s section malformed", errMeter, section)
	}
	return append(b, extra...), nil
}

// constExpr copies a constant expression up to its end, renumbering ref.func.
func (m *meterer) constExpr(b []byte, r *reader) ([]byte, error) {
	w := &walker{m: m, r: r}
	for depth := 0; ; {
		start := r.pos
		op, idx, err := w.next()
		if err != nil {
			return nil, err
		}
		switch op {
		case opRefFunc:
			b = append(b, 0xd2)
			b = appendU32(b, m.fn(idx))
			continue
		case 0x02, 0x03, 0x04:
			depth++
		case opEnd:
			if depth == 0 {
				return append(b, r.b[start:r.pos]...), nil
			}
			depth--
		}
		b = append(b, r.b[start:r.pos]...)
	}
}

// exports renumbers exported functions.
func (m *meterer) exports(payload []byte) ([]byte, error) {
	return vector(payload, "export", nil, func(_ uint32, r *reader, b []byte) ([]byte, error) {
		name := r.name()
		kind := r.byte()
		idx := r.u32()
		switch {
		case kind == 0x00:
			idx = m.fn(idx)
		case kind == 0x03 && idx >= m.fuel && r.err == nil:
			return nil, fmt.Errorf("%w: export %q of global %d, which does not exist", errMeter, name, idx)
		}
		b = appendName(b, name)
		b = append(b, kind)
		return appendU32(b, idx), nil
	})
}

// elements renumbers the functions of element segments, in each of the
// eight encodings (flags 0 to 7).
func (m *meterer) elements(payload []byte) ([]byte, error) {
	return vector(payload, "element", nil, func(i uint32, r *reader, b []byte) ([]byte, error) {
		flags := r.u32()
		b = appendU32(b, flags)
		if flags > 7 {
			return nil, fmt.Errorf("%w: element segment %d has flags %d", errMeter, i, flags)
		}
		var err error
		if flags&1 == 0 { // active: offset expression (with a table index when flags&2)
			if flags&2 != 0 {
				b = appendU32(b, r.u32())
			}
			if b, err = m.constExpr(b, r); err != nil {
				return nil, fmt.Errorf("%w: element segment %d: %v", errMeter, i, err)
			}
		}
		if flags&3 != 0 { // elemkind (flags&4 == 0) or reftype
			b = append(b, r.byte())
		}
		count := r.u32()
		b = appendU32(b, count)
		for j := uint32(0); j < count && r.err == nil; j++ {
			if flags&4 == 0 {
				b = appendU32(b, m.fn(r.u32()))
			} else if b, err = m.constExpr(b, r); err != nil {
				return nil, fmt.Errorf("%w: element segment %d: %v", errMeter, i, err)
			}
		}
		return b, nil
	})
}

// custom renumbers the function names and local names of the name
// section; other custom sections are kept as they are.
func (m *meterer) custom(payload []byte) ([]byte, error) {
	r := &reader{b: payload}
	if r.name() != "name" || r.err != nil {
		return payload, nil
	}
	b := append([]byte(nil), payload[:r.pos]...)
	for !r.done() {
		id := r.byte()
		size := r.u32()
		sub := r.bytes(int(size))
		if r.err != nil {
			return payload, nil // a malformed name section is not ours to judge: wazero ignores it too
		}
		if id == 1 || id == 2 { // function names, local names: keyed by function index
			sr := &reader{b: sub}
			n := sr.u32()
			nb := appendU32(nil, n)
			for i := uint32(0); i < n && sr.err == nil; i++ {
				nb = appendU32(nb, m.fn(sr.u32()))
				if id == 1 {
					nb = appendName(nb, sr.name())
					continue
				}
				ln := sr.u32()
				nb = appendU32(nb, ln)
				for j := uint32(0); j < ln && sr.err == nil; j++ {
					nb = appendU32(nb, sr.u32())
					nb = appendName(nb, sr.name())
				}
			}
			if sr.err != nil || !sr.done() {
				return payload, nil
			}
			sub = nb
		}
		b = append(b, id)
		b = appendU32(b, uint32(len(sub)))
		b = append(b, sub...)
	}
	return b, nil
}

// code meters every function body.
func (m *meterer) code(payload []byte) ([]byte, error) {
	return vector(payload, "code", nil, func(i uint32, r *reader, b []byte) ([]byte, error) {
		size := r.u32()
		body := r.bytes(int(size))
		if r.err != nil {
			return b, nil // vector reports the malformed section
		}
		if int(i) >= len(m.funcTypes) || int(m.funcTypes[i]) >= len(m.typeParams) {
			return nil, fmt.Errorf("%w: function %d has a body but no type", errMeter, m.nFuncImports+i)
		}
		nb, err := m.body(body, m.typeParams[m.funcTypes[i]])
		if err != nil {
			return nil, fmt.Errorf("%w: function %d: %v", errMeter, m.nFuncImports+i, err)
		}
		b = appendU32(b, uint32(len(nb)))
		return append(b, nb...), nil
	})
}

// body meters one function of nParams parameters: a first pass adds up the
// cost of the function's top level and of each loop (nested loops
// excluded), the second copies the code, renumbering calls and ref.func,
// with a charge after the locals, after each loop instruction and before
// each bulk instruction (of its length operand, kept in a scratch i32
// local appended to the function's locals).
func (m *meterer) body(body []byte, nParams uint32) ([]byte, error) {
	r := &reader{b: body}
	nl := r.u32()
	nLocals := uint64(nParams)
	for i := uint32(0); i < nl && r.err == nil; i++ {
		nLocals += uint64(r.u32())
		r.byte()
	}
	if r.err != nil {
		return nil, r.err
	}
	locals := body[:r.pos]
	exprStart := r.pos
	bulk := false

	// Pass 1: costs. costs[0] is the function's top level, costs[k] the
	// k-th loop in code order.
	costs := []int64{0}
	var frames []int // per open block: the cost region it charges to
	region := 0
	w := &walker{m: m, r: r}
	for !r.done() {
		op, idx, err := w.next()
		if err != nil {
			return nil, err
		}
		costs[region] += m.weight(op, idx)
		if _, ok := bulkShift(op); ok {
			bulk = true
		}
		switch op {
		case 0x02, 0x04: // block, if
			frames = append(frames, region)
		case 0x03: // loop: a region of its own
			frames = append(frames, region)
			region = len(costs)
			costs = append(costs, 0)
		case opEnd:
			if len(frames) > 0 {
				region = frames[len(frames)-1]
				frames = frames[:len(frames)-1]
			}
		}
	}

	// Pass 2: copy with charges.
	b := make([]byte, 0, len(body)+len(costs)*24)
	scratch := uint32(nLocals)
	if bulk {
		if nLocals >= math.MaxUint32 {
			return nil, errors.New("too many locals")
		}
		// The same locals and one more group: a single i32.
		lr := &reader{b: locals}
		b = appendU32(b, lr.u32()+1)
		b = append(b, locals[lr.pos:]...)
		b = append(b, 0x01, 0x7f)
	} else {
		b = append(b, locals...)
	}
	b = m.charge(b, costs[0])
	r = &reader{b: body, pos: exprStart}
	w = &walker{m: m, r: r}
	loop := 0
	for !r.done() {
		start := r.pos
		op, idx, err := w.next()
		if err != nil {
			return nil, err
		}
		switch op {
		case opCall:
			b = append(b, opCall)
			b = appendU32(b, m.fn(idx))
		case opRefFunc:
			b = append(b, opRefFunc)
			b = appendU32(b, m.fn(idx))
		case 0x03:
			b = append(b, body[start:r.pos]...)
			loop++
			b = m.charge(b, costs[loop])
		case 0x40: // memory.grow
			b = m.chargeGrow(b, body[start+1])
			b = append(b, body[start:r.pos]...)
		case 0xfc08, 0xfc0a, 0xfc0b, 0xfc0c, 0xfc0e, 0xfc0f, 0xfc11:
			shift, _ := bulkShift(op)
			b = m.chargeLength(b, scratch, shift)
			b = append(b, body[start:r.pos]...)
		default:
			b = append(b, body[start:r.pos]...)
		}
	}
	return b, nil
}

// weight is the cost of one instruction.
func (m *meterer) weight(op uint32, idx uint32) int64 {
	switch op {
	case opCall:
		if idx < m.nFuncImports {
			return costHostCall
		}
	case opCallIndirect:
		return costHostCall
	case 0x40, 0xfc08, 0xfc0a, 0xfc0b, 0xfc0c, 0xfc0e, 0xfc0f, 0xfc11: // memory.grow, bulk memory and table ops
		return costBulk
	}
	return 1
}

// charge appends: fuel -= cost; if fuel < 0 { fuel = refuel() }.
func (m *meterer) charge(b []byte, cost int64) []byte {
	b = append(b, 0x23) // global.get
	b = appendU32(b, m.fuel)
	b = append(b, 0x42) // i64.const
	b = appendS64(b, cost)
	b = append(b, 0x7d, 0x24) // i64.sub, global.set
	b = appendU32(b, m.fuel)
	b = append(b, 0x23)
	b = appendU32(b, m.fuel)
	b = append(b, 0x42, 0x00, 0x53, 0x04, 0x40, opCall) // i64.const 0, i64.lt_s, if, call
	b = appendU32(b, m.refuel)
	b = append(b, 0x24) // global.set
	b = appendU32(b, m.fuel)
	return append(b, opEnd)
}

// chargeLength appends, for a bulk instruction whose i32 length is on top of
// the stack: scratch = length (left on the stack); fuel -= length>>shift;
// if fuel < 0 { fuel = refuel() }.
func (m *meterer) chargeLength(b []byte, scratch uint32, shift uint64) []byte {
	b = append(b, 0x22) // local.tee
	b = appendU32(b, scratch)
	b = append(b, 0x23) // global.get
	b = appendU32(b, m.fuel)
	b = append(b, 0x20) // local.get
	b = appendU32(b, scratch)
	b = append(b, 0xad, 0x42) // i64.extend_i32_u, i64.const
	b = appendS64(b, int64(shift))
	b = append(b, 0x88, 0x7d, 0x24) // i64.shr_u, i64.sub, global.set
	b = appendU32(b, m.fuel)
	b = append(b, 0x23)
	b = appendU32(b, m.fuel)
	b = append(b, 0x42, 0x00, 0x53, 0x04, 0x40, opCall) // i64.const 0, i64.lt_s, if, call
	b = appendU32(b, m.refuel)
	b = append(b, 0x24) // global.set
	b = appendU32(b, m.fuel)
	return append(b, opEnd)
}

// chargeGrow appends, before a memory.grow of memory memidx: fuel -=
// memory.size<<(16-bulkMemoryShift); if fuel < 0 { fuel = refuel() }.
// Growing a memory may copy the whole of it: a loop growing it a page at
// a time to its ceiling would otherwise run for seconds (quadratic in
// the ceiling) without a check of the clock.
func (m *meterer) chargeGrow(b []byte, memidx byte) []byte {
	b = append(b, 0x23) // global.get
	b = appendU32(b, m.fuel)
	b = append(b, 0x3f, memidx, 0xad, 0x42) // memory.size, i64.extend_i32_u, i64.const
	b = appendS64(b, 16-bulkMemoryShift)
	b = append(b, 0x86, 0x7d, 0x24) // i64.shl, i64.sub, global.set
	b = appendU32(b, m.fuel)
	b = append(b, 0x23)
	b = appendU32(b, m.fuel)
	b = append(b, 0x42, 0x00, 0x53, 0x04, 0x40, opCall) // i64.const 0, i64.lt_s, if, call
	b = appendU32(b, m.refuel)
	b = append(b, 0x24) // global.set
	b = appendU32(b, m.fuel)
	return append(b, opEnd)
}

// Opcodes the walker reports specially. Prefixed opcodes are reported as
// prefix<<8 | sub-opcode.
const (
	opEnd          = 0x0b
	opCall         = 0x10
	opCallIndirect = 0x11
	opRefFunc      = 0xd2
)

// walker decodes one instruction at a time, skipping its immediates. It
// knows the instructions of WebAssembly 2.0 (with SIMD), which are those
// wazero runs; anything else is an error.
type walker struct {
	m *meterer
	r *reader
}

// next decodes an instruction and returns its opcode and, for call and
// ref.func, the function index.
func (w *walker) next() (op uint32, idx uint32, err error) {
	r := w.r
	c := r.byte()
	op = uint32(c)
	switch {
	case c == 0x02 || c == 0x03 || c == 0x04: // block, loop, if: blocktype
		if t := r.blockType(); t >= int64(w.m.nTypes) {
			return 0, 0, fmt.Errorf("block type %d does not exist", t)
		}
	case c == 0x0c || c == 0x0d: // br, br_if
		r.u32()
	case c == 0x0e: // br_table
		n := r.u32()
		for i := uint32(0); i <= n && r.err == nil; i++ {
			r.u32()
		}
	case c == opCall:
		idx = r.u32()
	case c == opCallIndirect:
		if t := r.u32(); t >= w.m.nTypes && r.err == nil {
			return 0, 0, fmt.Errorf("call_indirect of type %d, which does not exist", t)
		}
		r.u32()
	case c == 0x1c: // select t*
		n := r.u32()
		r.bytes(int(n))
	case c == 0x23 || c == 0x24: // global.get, global.set
		// The fuel is the one global the module did not have: an index
		// past the module's own globals is refused, not let through to
		// meet the fuel.
		if g := r.u32(); g >= w.m.fuel && r.err == nil {
			return 0, 0, fmt.Errorf("global %d does not exist", g)
		}
	case c >= 0x20 && c <= 0x26: // local.*, table.get/set
		r.u32()
	case c >= 0x28 && c <= 0x3e: // loads and stores: memarg
		r.u32()
		r.u32()
	case c == 0x3f || c == 0x40: // memory.size, memory.grow
		r.byte()
	case c == 0x41: // i32.const
		r.s64()
	case c == 0x42: // i64.const
		r.s64()
	case c == 0x43:
		r.bytes(4)
	case c == 0x44:
		r.bytes(8)
	case c == 0xd0: // ref.null t
		r.byte()
	case c == opRefFunc:
		idx = r.u32()
	case c == 0xfc:
		sub := r.u32()
		op = 0xfc00 | sub
		switch {
		case sub <= 7: // saturating truncations
		case sub == 8: // memory.init
			r.u32()
			r.byte()
		case sub == 9, sub == 13, sub == 15, sub == 16, sub == 17: // data.drop, elem.drop, table.grow/size/fill
			r.u32()
		case sub == 10: // memory.copy
			r.byte()
			r.byte()
		case sub == 11: // memory.fill
			r.byte()
		case sub == 12, sub == 14: // table.init, table.copy
			r.u32()
			r.u32()
		default:
			return 0, 0, fmt.Errorf("unknown instruction 0xfc %d at byte %d", sub, r.pos)
		}
	case c == 0xfd:
		sub := r.u32()
		op = 0xfd00 | sub
		switch {
		case sub <= 11 || sub == 92 || sub == 93: // loads and stores
			r.u32()
			r.u32()
		case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
			r.bytes(16)
		case sub >= 21 && sub <= 34: // extract and replace lane
			r.byte()
		case sub >= 84 && sub <= 91: // load and store lane
			r.u32()
			r.u32()
			r.byte()
		case sub <= 255:
		default:
			return 0, 0, fmt.Errorf("unknown instruction 0xfd %d at byte %d", sub, r.pos)
		}
	case c == 0x00 || c == 0x01 || c == 0x05 || c == opEnd || c == 0x0f || c == 0x1a || c == 0x1b ||
		c >= 0x45 && c <= 0xc4 || c == 0xd1:
		// no immediates
	default:
		return 0, 0, fmt.Errorf("instruction %#x at byte %d is not one wazero runs", c, r.pos-1)
	}
	if r.err != nil {
		return 0, 0, r.err
	}
	return op, idx, nil
}

// reader decodes the binary format; the first error sticks.
type reader struct {
	b   []byte
	pos int
	err error
}

var errShort = errors.New("unexpected end")

func (r *reader) done() bool { return r.err != nil || r.pos >= len(r.b) }

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.pos >= len(r.b) {
		r.err = errShort
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.pos {
		r.err = errShort
		return nil
	}
	b := r.b[r.pos : r.pos+n]
	r.pos += n
	return b
}

func (r *reader) u32() uint32 {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if v > math.MaxUint32 {
				r.err = errors.New("integer too large")
				return 0
			}
			return uint32(v)
		}
	}
	r.err = errors.New("integer representation too long")
	return 0
}

// s64 skips a signed LEB128 of up to 64 bits (s32, s33 and s64 alike).
func (r *reader) s64() {
	for i := 0; i < 10; i++ {
		c := r.byte()
		if r.err != nil || c&0x80 == 0 {
			return
		}
	}
	r.err = errors.New("integer representation too long")
}

// blockType reads a block type: -1 for 0x40 or a value type, else a type
// index (an s33).
func (r *reader) blockType() int64 {
	if r.pos < len(r.b) && r.b[r.pos]&0xc0 == 0x40 { // a negative one-byte s33: 0x40 or a value type
		r.pos++
		return -1
	}
	var v int64
	var shift uint
	for i := 0; i < 5; i++ {
		c := r.byte()
		if r.err != nil {
			return -1
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
	r.err = errors.New("block type too long")
	return -1
}

func (r *reader) name() string {
	n := r.u32()
	return string(r.bytes(int(n)))
}

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendName(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}
