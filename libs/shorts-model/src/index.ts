export * from './shorts-model.js';
export * from './highlights.js';
export * from './ffmpeg-shorts-model.js';
export * from './zip.js';
