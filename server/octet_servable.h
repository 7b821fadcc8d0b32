// The production ServableLoader: <version_dir>/model.onnx loaded by the Octet engine.
#ifndef OCTET_SERVER_OCTET_SERVABLE_H_
#define OCTET_SERVER_OCTET_SERVABLE_H_

#include "server/servable.h"

namespace octet::server {

// File name of the model inside a version directory.
inline constexpr char kModelFileName[] = "model.onnx";

ServableLoader OctetModelLoader();

}  // namespace octet::server

#endif  // OCTET_SERVER_OCTET_SERVABLE_H_
