#include "keel/eval/generator.h"

#include <cctype>

namespace keel::eval {

std::string plain_transcript(const Conversation& conversation) {
  std::string out;
  for (const auto& turn : conversation) {
    std::string role = turn.role;
    if (!role.empty()) role[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(role[0])));
    out.append(role).append(": ").append(turn.content).append("\n\n");
  }
  return out + "Assistant:";
}

}  // namespace keel::eval
