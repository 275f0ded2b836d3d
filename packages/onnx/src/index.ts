/** @fr/onnx: export of @fr backbones to ONNX inference graphs, with a hand-written protobuf encoder. */
export { exportOnnx, exportBackboneOnnx, type OnnxExportOptions } from './export.js';
