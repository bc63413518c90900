// Graph IR → ONNX ModelProto bytes (schema from the onnx-proto package).
// Weights and constants become initializers (raw little-endian data); inputs
// and params become graph inputs; declared outputs become graph outputs.

import onnxProto from 'onnx-proto';
import type { onnx as OnnxNs } from 'onnx-proto';
import { AttrValue, DType, Graph, Shape, TypedData, Value } from '../graph/ir.ts';

const { onnx } = onnxProto as unknown as { onnx: typeof OnnxNs };

export const OPSET = 17;

/** Versions of the other operator domains a graph may use (onnxruntime's contrib ops: quantized products). */
export const DOMAIN_OPSETS: Record<string, number> = { 'com.microsoft': 1 };

const ELEM: Record<DType, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float64: 11 };

function valueName(v: Value): string {
  return v.leaf ? v.leaf.name : `v${v.id}`;
}

function tensorProto(name: string, dtype: DType, dims: number[], data: TypedData) {
  return onnx.TensorProto.create({
    name,
    dataType: ELEM[dtype],
    dims,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

function typeProto(dtype: DType, shape: Shape) {
  return onnx.TypeProto.create({
    tensorType: onnx.TypeProto.Tensor.create({
      elemType: ELEM[dtype],
      shape: onnx.TensorShapeProto.create({
        dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
      }),
    }),
  });
}

function attribute(name: string, v: AttrValue) {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return onnx.AttributeProto.create({ name, type: A.INT, i: v });
  if (typeof v === 'string') return onnx.AttributeProto.create({ name, type: A.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: A.INTS, ints: v });
  if ('float' in v) return onnx.AttributeProto.create({ name, type: A.FLOAT, f: v.float });
  if ('floats' in v) return onnx.AttributeProto.create({ name, type: A.FLOATS, floats: v.floats });
  return onnx.AttributeProto.create({ name, type: A.TENSOR, t: tensorProto(name, v.tensor.dtype, v.tensor.dims, v.tensor.data) });
}

/** Only nodes that some output depends on are emitted. */
function liveNodes(g: Graph) {
  const needed = new Set<Value>(g.outputs.map((o) => o.value));
  const live = new Array<boolean>(g.nodes.length).fill(false);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (n.outputs.some((o) => needed.has(o))) {
      live[i] = true;
      for (const x of n.inputs) if (x) needed.add(x);
    }
  }
  return { nodes: g.nodes.filter((_, i) => live[i]), needed };
}

/** The non-default domains the emitted nodes use; each must have a known version. */
function domainsOf(nodes: Graph['nodes']): string[] {
  const domains = [...new Set(nodes.map((n) => n.domain ?? '').filter((d) => d !== ''))];
  for (const d of domains) if (!(d in DOMAIN_OPSETS)) throw new Error(`ONNX emit: operator domain '${d}' has no known version (known: ${Object.keys(DOMAIN_OPSETS).join(', ')})`);
  return domains;
}

export function toModelProto(g: Graph) {
  if (g.outputs.length === 0) throw new Error(`Graph '${g.name}' has no outputs`);
  const { nodes, needed } = liveNodes(g);
  const outputNames = new Map<Value, string>();
  const nodeProtos = nodes.map((n, i) =>
    onnx.NodeProto.create({
      opType: n.op,
      domain: n.domain ?? '',
      name: `${n.op}_${i}`,
      input: n.inputs.map((x) => (x ? valueName(x) : '')),
      output: n.outputs.map((o) => valueName(o)),
      attribute: Object.entries(n.attrs).map(([k, v]) => attribute(k, v)),
    }),
  );
  // Declared outputs get their own names through Identity nodes (a value may be output twice).
  for (const o of g.outputs) {
    nodeProtos.push(onnx.NodeProto.create({ opType: 'Identity', name: `out_${o.name}`, input: [valueName(o.value)], output: [o.name] }));
    outputNames.set(o.value, o.name);
  }
  const initializers = [];
  const inputs = [];
  for (const v of g.leaves) {
    if (!needed.has(v)) continue;
    const leaf = v.leaf!;
    if (leaf.kind === 'weight' || leaf.kind === 'const') {
      if (leaf.data!.length === 0 && v.shape.some((d) => d !== 0)) {
        throw new Error(
          `ONNX emit: weight '${leaf.name}' [${v.shape}] has no float32 values: it was loaded quantized (--base-dtype) and only its quantized form is kept, ` +
            'but this graph reads the float32 weight itself. Run this with --base-dtype fp32',
        );
      }
      initializers.push(tensorProto(leaf.name, v.dtype, v.shape as number[], leaf.data!));
    } else {
      inputs.push(onnx.ValueInfoProto.create({ name: leaf.name, type: typeProto(v.dtype, v.shape) }));
    }
  }
  const graph = onnx.GraphProto.create({
    name: g.name,
    node: nodeProtos,
    initializer: initializers,
    input: inputs,
    output: g.outputs.map((o) => onnx.ValueInfoProto.create({ name: o.name, type: typeProto(o.value.dtype, o.value.shape) })),
  });
  return onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'lorakit',
    opsetImport: [
      onnx.OperatorSetIdProto.create({ domain: '', version: OPSET }),
      ...domainsOf(nodes).map((domain) => onnx.OperatorSetIdProto.create({ domain, version: DOMAIN_OPSETS[domain] })),
    ],
    graph,
  });
}

export function toOnnxBytes(g: Graph): Uint8Array {
  return onnx.ModelProto.encode(toModelProto(g)).finish();
}

/** Names of the graph inputs a run must feed (inputs and params that outputs depend on). */
export function feedNames(g: Graph): string[] {
  const { needed } = liveNodes(g);
  return g.leaves.filter((v) => needed.has(v) && (v.leaf!.kind === 'input' || v.leaf!.kind === 'param')).map((v) => v.leaf!.name);
}
