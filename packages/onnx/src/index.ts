/** @fr/onnx: ONNX in and out of @fr: export of backbones (a hand-written protobuf encoder) and the `onnx` backbone, which runs and trains ONNX recognition graphs. */
export { exportOnnx, exportBackboneOnnx, type OnnxExportOptions } from './export.js';
export { decodeOnnx, type OnnxModel, type OnnxNode, type OnnxTensor, type OnnxAttribute, type OnnxValueInfo } from './decode.js';
export { buildOnnxModule, checkOnnxModel, SUPPORTED_OPS, OPSETS } from './graph.js';
export { onnxBackbone, onnxBackboneParams, onnxModelShape, type OnnxBackboneOptions, type OnnxBackboneParams } from './backbone.js';
