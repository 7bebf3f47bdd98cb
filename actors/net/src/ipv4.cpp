#include "deckhand/net/ipv4.hpp"

namespace deckhand::net {

std::optional<ipv4> ipv4::parse(const std::string& text) {
  std::uint32_t v = 0;
  std::size_t i = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (i >= text.size() || text[i] != '.')
        return std::nullopt;
      ++i;
    }
    std::size_t start = i;
    unsigned octet = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && i - start < 3)
      octet = octet * 10 + static_cast<unsigned>(text[i++] - '0');
    std::size_t len = i - start;
    if (len == 0 || octet > 255 || (len > 1 && text[start] == '0'))
      return std::nullopt;
    v = (v << 8) | octet;
  }
  if (i != text.size())
    return std::nullopt;
  return ipv4{v};
}

std::string ipv4::to_string() const {
  return std::to_string(value >> 24) + "." + std::to_string((value >> 16) & 0xff) + "." +
         std::to_string((value >> 8) & 0xff) + "." + std::to_string(value & 0xff);
}

result<ipv4_cidr> ipv4_cidr::parse(const std::string& text) {
  auto slash = text.find('/');
  auto bad = [&](const std::string& why) {
    return error{errc::invalid, "CIDR \"" + text + "\": " + why};
  };
  if (slash == std::string::npos)
    return bad("expected ADDRESS/PREFIX");
  auto addr = ipv4::parse(text.substr(0, slash));
  if (!addr)
    return bad("not an IPv4 address");
  auto p = text.substr(slash + 1);
  if (p.empty() || p.size() > 2 || p.find_first_not_of("0123456789") != std::string::npos)
    return bad("prefix length must be 0..32");
  int prefix = std::stoi(p);
  if (prefix > 32)
    return bad("prefix length must be 0..32");
  ipv4_cidr c{*addr, prefix};
  if ((addr->value & c.mask()) != addr->value)
    return bad("host bits are set (network is " + ipv4{addr->value & c.mask()}.to_string() + "/" +
               p + ")");
  return c;
}

std::string ipv4_cidr::to_string() const {
  return network.to_string() + "/" + std::to_string(prefix);
}

}  // namespace deckhand::net
