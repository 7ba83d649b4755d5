// The part of the Arduino core API the exported sketches use, declared as the cores declare it, so a
// sketch compiles (with -Wall -Wextra -Werror) without a core; nothing here runs.
#ifndef TINYPRUNE_TEST_ARDUINO_H
#define TINYPRUNE_TEST_ARDUINO_H

#include <stddef.h>
#include <stdint.h>

unsigned long millis(void);
unsigned long micros(void);
void delay(unsigned long ms);

class HardwareSerial {
 public:
  void begin(unsigned long baud);
  explicit operator bool();
  int available();
  int peek();
  int read();
  size_t write(uint8_t byte);
  size_t write(const uint8_t* bytes, size_t count);
  size_t print(const char* text);
  size_t print(int value);
  size_t print(unsigned int value);
  size_t print(long value);
  size_t print(unsigned long value);
  size_t print(double value, int digits = 2);
  size_t println(const char* text);
  size_t println(int value);
  size_t println(unsigned long value);
  float parseFloat();
};

extern HardwareSerial Serial;

#endif
