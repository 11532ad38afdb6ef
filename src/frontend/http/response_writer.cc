#include "frontend/http/response_writer.h"

#include "frontend/http/http_status.h"
#include "frontend/http/json_util.h"

namespace sluice::http {

bool ResponseWriter::SendJson(int status, const nlohmann::json& body, HeaderList headers) {
  return Send(status, "application/json", DumpJson(body), std::move(headers));
}

bool ResponseWriter::SendError(const Status& status) {
  return SendError(HttpStatusFromCode(status.code()), status.message());
}

bool ResponseWriter::SendError(int http_status, const std::string& message) {
  return Send(http_status, "application/json", ErrorBody(message));
}

}  // namespace sluice::http
