// Browan TBHH100 healthy home sensor (environment sensor), written for pilotlab from Browan's
// published Tabs payload format, fPort 103:
//   byte 0  status, bits 7-3
//   byte 1  battery, bits 3-0: voltage = (25 + v) / 10 V
//   byte 2  temperature, bits 6-0: °C = t - 32
//   byte 3  relative humidity, bits 6-0: %
function decodeUplink(input) {
  if (input.fPort !== 103) {
    return { errors: ["unknown FPort"] };
  }
  var b = input.bytes;
  return {
    data: {
      status: b[0] >> 3,
      battery: (25 + (b[1] & 0x0f)) / 10,
      temperature: (b[2] & 0x7f) - 32,
      humidity: b[3] & 0x7f
    }
  };
}
