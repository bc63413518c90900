// The graph IR: symbolic tensors (dtype + shape, dims may be named like 'B'),
// nodes that mirror ONNX operators, and four kinds of leaves:
//   input  – fed each run (token ids, masks, labels)
//   param  – trainable; fed each run, gradients come back as outputs
//   weight – frozen; emitted as an ONNX initializer, never differentiated
//   const  – small literal tensors (shapes, scalars), also initializers
// Nodes are appended in construction order, which is a topological order.

// int8/uint8 hold quantized frozen weights (src/quant/) and the zero points of quantized products.
export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool' | 'int8' | 'uint8';
export type Dim = number | string;
export type Shape = Dim[];
export type TypedData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int8Array;

export type AttrValue = number | string | number[] | { float: number } | { floats: number[] } | { tensor: { dtype: DType; dims: number[]; data: TypedData } };

export type LeafKind = 'input' | 'param' | 'weight' | 'const';

export class ShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShapeError';
  }
}

export class Value {
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly dtype: DType,
    readonly shape: Shape,
    /** Producing node, or null for a leaf. */
    readonly node: Node | null,
    readonly leaf: Leaf | null,
  ) {}
  get rank(): number {
    return this.shape.length;
  }
  /** Human-readable description used in error messages. */
  describe(): string {
    const origin = this.leaf ? `${this.leaf.kind} '${this.leaf.name}'` : `${this.node!.op} output`;
    return `${origin} [${this.shape.join(',')}] ${this.dtype}`;
  }
}

export interface Leaf {
  kind: LeafKind;
  name: string;
  /** weight/const data; params carry their initial value here. */
  data?: TypedData;
}

export interface Node {
  op: string;
  inputs: (Value | null)[]; // null = omitted optional ONNX input
  outputs: Value[];
  attrs: Record<string, AttrValue>;
  domain?: string;
  /** Set on the last node of a composite (see Graph.setCustomVjp): autodiff uses it instead of the per-node rules. */
  customVjp?: CustomVjp;
}

/**
 * A hand-written vector-Jacobian product for a value built from several nodes
 * (a fused backward, like jax.custom_vjp): given the gradient of the value, the
 * gradients of `inputs` (null where `need` is false). The composite's inner
 * nodes then receive no gradient through this value, so their per-node rules
 * (often many more elementwise passes) are skipped. `inputs` must list every
 * differentiable value the composite reads; when none of them needs a
 * gradient, autodiff falls back to the per-node rules.
 */
export interface CustomVjp {
  inputs: Value[];
  vjp: (gy: Value, need: boolean[]) => (Value | null)[];
}

export interface GraphOutput {
  name: string;
  value: Value;
}

export function dtypeArray(dtype: DType, n: number): TypedData {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'int32': return new Int32Array(n);
    case 'bool': return new Uint8Array(n);
    case 'int8': return new Int8Array(n);
    case 'uint8': return new Uint8Array(n);
  }
}

export function numel(shape: Shape): number | null {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') return null;
    n *= d;
  }
  return n;
}

export class Graph {
  readonly values: Value[] = [];
  readonly nodes: Node[] = [];
  readonly leaves: Value[] = [];
  readonly outputs: GraphOutput[] = [];
  private leafNames = new Map<string, Value>();
  private constCache = new Map<string, Value>();
  /**
   * Full fine-tuning: float32 weights whose name this accepts become trainable
   * parameters (fed each run, differentiated) instead of frozen initializers,
   * with no change to the model builders that declare them.
   */
  trainableWeights?: (name: string) => boolean;

  constructor(readonly name = 'lorakit') {}

  private newValue(dtype: DType, shape: Shape, node: Node | null, leaf: Leaf | null): Value {
    const v = new Value(this, this.values.length, dtype, shape.slice(), node, leaf);
    this.values.push(v);
    return v;
  }

  private addLeaf(leaf: Leaf, dtype: DType, shape: Shape): Value {
    if (this.leafNames.has(leaf.name)) {
      throw new Error(`Graph '${this.name}': a tensor named '${leaf.name}' already exists`);
    }
    if (leaf.data) {
      const n = numel(shape);
      if (n === null) throw new ShapeError(`${leaf.kind} '${leaf.name}' has data but a symbolic shape [${shape}]`);
      // A frozen weight may be a zero-length stand-in whose values live in a quantized form (src/quant/): checked when emitted.
      if (leaf.data.length !== n && !(leaf.kind === 'weight' && leaf.data.length === 0)) {
        throw new ShapeError(`${leaf.kind} '${leaf.name}': data has ${leaf.data.length} elements, shape [${shape.join(',')}] needs ${n}`);
      }
    }
    const v = this.newValue(dtype, shape, null, leaf);
    this.leaves.push(v);
    this.leafNames.set(leaf.name, v);
    return v;
  }

  /** A tensor fed at every run (a batch of ids, a mask, labels). */
  input(name: string, dtype: DType, shape: Shape): Value {
    return this.addLeaf({ kind: 'input', name }, dtype, shape);
  }

  /** A trainable parameter. `init` is its starting value (kept for reference; the trainer owns the live copy). */
  param(name: string, shape: number[], init?: Float32Array): Value {
    const data = init ?? new Float32Array(numel(shape)!);
    return this.addLeaf({ kind: 'param', name, data }, 'float32', shape);
  }

  /** A frozen weight, baked into the compiled model as an initializer (or a parameter: see trainableWeights). */
  weight(name: string, data: TypedData, shape: number[], dtype: DType = 'float32'): Value {
    if (dtype === 'float32' && this.trainableWeights?.(name)) return this.addLeaf({ kind: 'param', name, data }, dtype, shape);
    return this.addLeaf({ kind: 'weight', name, data }, dtype, shape);
  }

  /** A small literal; identical literals are shared. */
  const(data: TypedData, shape: number[], dtype: DType): Value {
    const key = `${dtype}|${shape.join(',')}|${Array.from(data as ArrayLike<number | bigint>, String).join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const v = this.addLeaf({ kind: 'const', name: `const_${this.values.length}`, data }, dtype, shape);
    this.constCache.set(key, v);
    return v;
  }

  scalar(x: number, dtype: DType = 'float32'): Value {
    const data = dtypeArray(dtype, 1);
    (data as any)[0] = dtype === 'int64' ? BigInt(x) : x;
    return this.const(data, [], dtype);
  }

  ints(xs: number[]): Value {
    return this.const(BigInt64Array.from(xs.map((x) => BigInt(x))), [xs.length], 'int64');
  }

  /** Low-level node creation; op builders in ops.ts compute dtypes and shapes. */
  addNode(op: string, inputs: (Value | null)[], outTypes: { dtype: DType; shape: Shape }[], attrs: Record<string, AttrValue> = {}, domain?: string): Value[] {
    for (const x of inputs) {
      if (x && x.graph !== this) throw new Error(`${op}: input ${x.describe()} belongs to another graph`);
    }
    const node: Node = { op, inputs, outputs: [], attrs, domain };
    for (const t of outTypes) node.outputs.push(this.newValue(t.dtype, t.shape, node, null));
    this.nodes.push(node);
    return node.outputs;
  }

  /** Attach a fused backward to `y` (the single output of the composite's last node). */
  setCustomVjp(y: Value, inputs: Value[], vjp: CustomVjp['vjp']): Value {
    if (!y.node || y.node.outputs.length !== 1) throw new Error(`setCustomVjp: ${y.describe()} must be the only output of a node`);
    y.node.customVjp = { inputs, vjp };
    return y;
  }

  output(name: string, value: Value): Value {
    if (this.outputs.some((o) => o.name === name)) throw new Error(`Graph '${this.name}': output '${name}' already declared`);
    this.outputs.push({ name, value });
    return value;
  }

  leaf(name: string): Value | undefined {
    return this.leafNames.get(name);
  }

  params(): Value[] {
    return this.leaves.filter((v) => v.leaf!.kind === 'param');
  }

  inputs(): Value[] {
    return this.leaves.filter((v) => v.leaf!.kind === 'input');
  }
}
