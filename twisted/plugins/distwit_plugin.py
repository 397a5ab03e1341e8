from twisted.application.service import ServiceMaker

distwit = ServiceMaker(
    "distwit",
    "distwit.tap",
    "A distributed, federated Twitter: twitter, ping and registry servers.",
    "distwit",
)
