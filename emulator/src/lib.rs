//! teo-emulator (being written).
