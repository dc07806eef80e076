// Netvox R809A plug-in smart socket with metering (smart switch / plug), written for pilotlab from
// Netvox's published LoRaWAN application command format (big-endian):
//   fPort 6, byte 0 version, byte 1 device type (0x0E = R809A), byte 2 report type:
//     0x00 startup version: byte 3 software version (÷10), byte 4 hardware version, bytes 5-8 date code (BCD)
//     0x01 status 1: byte 3 on/off, bytes 4-7 energy (uint32), bytes 8-10 over-current, dash-current, power-off alarms
//     0x02 status 2: bytes 3-4 voltage V, bytes 5-6 current mA, bytes 7-8 power W
//   fPort 7, byte 0 command id, byte 1 device type:
//     0x81 ConfigReportRsp: byte 2 status (0 success)
//     0x82 ReadConfigReportRsp: bytes 2-3 min time s, 4-5 max time s, 6-7 current change, 8-9 power change
// Written in ChirpStack v3's form, Decode(fPort, bytes, variables).
function Decode(port, bytes, variables) {
  var out = {};
  out.Device = deviceName(bytes[1]);
  if (port === 6) {
    switch (bytes[2]) {
      case 0x00:
        out.SWver = bytes[3] / 10;
        out.HWver = bytes[4];
        out.Datecode = bcd(bytes.slice(5, 9));
        break;
      case 0x01:
        out.OnOff = bytes[3] ? "ON" : "OFF";
        out.Energy = u32(bytes, 4);
        out.OverCurrentAlarm = alarm(bytes[8]);
        out.DashCurrentAlarm = alarm(bytes[9]);
        out.PowerOffAlarm = alarm(bytes[10]);
        break;
      case 0x02:
        out.Vol = u16(bytes, 3);
        out.Current = u16(bytes, 5);
        out.Power = u16(bytes, 7);
        break;
      default:
        throw new Error("unknown report type " + bytes[2]);
    }
  } else if (port === 7) {
    if (bytes[0] === 0x81) {
      out.Cmd = "ConfigReportRsp";
      out.Status = bytes[2] === 0 ? "Success" : "Failure";
    } else if (bytes[0] === 0x82) {
      out.Cmd = "ReadConfigReportRsp";
      out.MinTime = u16(bytes, 2);
      out.MaxTime = u16(bytes, 4);
      out.CurrentChange = u16(bytes, 6);
      out.PowerChange = u16(bytes, 8);
    }
  }
  return out;

  // function declarations after the return are hoisted, as in the vendor's files
  function u16(b, i) { return (b[i] << 8) | b[i + 1]; }
  function u32(b, i) { return ((b[i] << 24) >>> 0) + (b[i + 1] << 16) + (b[i + 2] << 8) + b[i + 3]; }
  function alarm(v) { return v ? "Alarm" : "No alarm"; }
  function bcd(b) { return b.map(function (x) { return ("0" + x.toString(16)).slice(-2); }).join(""); }
  function deviceName(type) { return type === 0x0e ? "R809A" : "Unknown"; }
}
