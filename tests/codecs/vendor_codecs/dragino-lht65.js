// Dragino LHT65 temperature and humidity sensor (environment sensor), written for pilotlab from
// Dragino's published uplink format (LHT65 user manual, fPort 2, 11 bytes, big-endian):
//   bytes 0-1   battery: bits 15-14 status, bits 13-0 mV
//   bytes 2-3   built-in SHT20 temperature, int16, 0.01 °C
//   bytes 4-5   built-in SHT20 humidity, uint16, 0.1 %RH
//   byte  6     external sensor type (0x01 = DS18B20 temperature probe)
//   bytes 7-8   external temperature, int16, 0.01 °C
//   bytes 9-10  reserved
// Written in the older TTN form, Decoder(bytes, port), wrapped by decodeUplink as many files do.
var EXTERNAL_SENSORS = { 0: "No external sensor", 1: "Temperature Sensor" };

function Decoder(bytes, port) {
  var be16 = function (i) { return (bytes[i] << 8) | bytes[i + 1]; };
  var signed16 = function (v) { return v & 0x8000 ? v - 0x10000 : v; };
  var decoded = {
    BatV: (be16(0) & 0x3fff) / 1000,
    Bat_status: bytes[0] >> 6,
    TempC_SHT: signed16(be16(2)) / 100,
    Hum_SHT: be16(4) / 10
  };
  decoded.Ext_sensor = EXTERNAL_SENSORS[bytes[6]] || "Unknown";
  if (bytes[6] === 1) {
    decoded.TempC_DS = signed16(be16(7)) / 100;
  }
  return decoded;
}

function decodeUplink(input) {
  if (input.fPort !== 2) {
    return { errors: ["unknown FPort"] };
  }
  return { data: Decoder(input.bytes, input.fPort) };
}
