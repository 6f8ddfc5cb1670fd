export * from "./proto.js";
export * from "./status.js";
